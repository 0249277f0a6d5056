from django.db import migrations


def backfill(apps, schema_editor):
    """Refunds made before the purpose existed reopened their invoice: say so. A card
    tokenized only for a payment its payer did not keep it for was never a saved card."""
    Refund = apps.get_model("payments", "Refund")
    PaymentMethod = apps.get_model("payments", "PaymentMethod")
    Refund.objects.filter(compensation=False).update(purpose="reopen")
    PaymentMethod.objects.filter(payments__forget_card=True).update(saved=False)


class Migration(migrations.Migration):
    # Data only, in its own transaction: PostgreSQL refuses to alter a table with
    # pending (deferred) trigger events, so the constraint comes in 0010.

    dependencies = [("payments", "0008_card_consent_refund_purpose")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
