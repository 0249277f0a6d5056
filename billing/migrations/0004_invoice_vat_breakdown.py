"""The frozen VAT breakdown of an invoice, and the freeze trigger extended to it."""

import importlib

from django.db import migrations, models

freeze = importlib.import_module("billing.migrations.0002_freeze_finalized_invoices")
COLUMNS = [*freeze.FROZEN_COLUMNS, "vat_breakdown"]


def drop_sqlite_triggers(apps, schema_editor):
    # A demo database migrated by an earlier 0002 may hold SQLite triggers, which
    # break the table rebuild of AddField on SQLite (see 0002).
    if schema_editor.connection.vendor == "sqlite":
        for statement in freeze.SQLITE_REVERSE:
            schema_editor.execute(statement, params=None)


def replace_postgres_trigger(columns):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(freeze.POSTGRES_REVERSE, params=None)
            schema_editor.execute(freeze.postgres_forward(columns), params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_default_series")]

    operations = [
        migrations.RunPython(drop_sqlite_triggers, migrations.RunPython.noop),
        migrations.AddField(
            model_name="invoice",
            name="vat_breakdown",
            field=models.JSONField(
                blank=True,
                default=list,
                editable=False,
                help_text="VAT per (category, rate), frozen at finalization (EN 16931 BG-23).",
            ),
        ),
        migrations.RunPython(
            replace_postgres_trigger(COLUMNS), replace_postgres_trigger(freeze.FROZEN_COLUMNS)
        ),
    ]
