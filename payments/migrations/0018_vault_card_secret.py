"""The card ciphertexts move to a table of their own, readable only by the vault role
(docs/decisions.md 73): payments_vault_cardsecret keyed by the method's token, with the
data key it is sealed under; payment methods keep only what may be shown."""

import sys

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

_COPY = (
    "INSERT INTO payments_vault_cardsecret (token, data_key_id, ciphertext, created_at)"
    " SELECT token, data_key_id, ciphertext, created_at FROM payments_paymentmethod"
    " WHERE ciphertext IS NOT NULL AND data_key_id IS NOT NULL"
)
# Back (unapplying): the columns are added again, empty, then filled from the secrets.
_COPY_BACK = (
    "UPDATE payments_paymentmethod SET"
    " ciphertext = (SELECT s.ciphertext FROM payments_vault_cardsecret s"
    " WHERE s.token = payments_paymentmethod.token),"
    " data_key_id = (SELECT s.data_key_id FROM payments_vault_cardsecret s"
    " WHERE s.token = payments_paymentmethod.token)"
)


def grant(apps, schema_editor):  # type: ignore[no-untyped-def]
    from payments.vault.grants import grant_vault_role

    from django.conf import settings

    report = grant_vault_role(schema_editor.connection)
    postgres = schema_editor.connection.vendor == "postgresql"
    if not report.applied and postgres and not settings.TESTING:
        sys.stdout.write(f"\n  {report.message}\n")


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0017_fraud_velocity"),
    ]

    operations = [
        migrations.CreateModel(
            name="CardSecret",
            fields=[
                (
                    "token",
                    models.CharField(
                        editable=False, max_length=64, primary_key=True, serialize=False
                    ),
                ),
                ("ciphertext", models.BinaryField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "data_key",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="secrets",
                        to="payments.datakey",
                    ),
                ),
            ],
            options={
                "verbose_name": "card secret",
                "db_table": "payments_vault_cardsecret",
            },
        ),
        migrations.RunSQL(_COPY, reverse_sql=migrations.RunSQL.noop),
        migrations.RemoveConstraint(
            model_name="paymentmethod",
            name="payments_paymentmethod_ciphertext_iff_active",
        ),
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql=_COPY_BACK),
        migrations.RemoveField(
            model_name="paymentmethod",
            name="ciphertext",
        ),
        migrations.RemoveField(
            model_name="paymentmethod",
            name="data_key",
        ),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
