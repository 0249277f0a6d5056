from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [("payments", "0009_backfill_purpose_and_consent")]

    operations = [
        migrations.AddConstraint(
            model_name="refund",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("compensation", True),
                    ("purpose__in", ["credit_note", "reopen"]),
                    _connector="OR",
                ),
                name="payments_refund_has_purpose",
            ),
        ),
    ]
