"""The freeze trigger lets an invoice and its lines be deleted once the bookkeeping period
is over (finalized more than seven years ago), and never before, whatever the caller."""

import importlib

from django.db import migrations

freeze = importlib.import_module("billing.migrations.0002_freeze_finalized_invoices")
COLUMNS = importlib.import_module("billing.migrations.0004_invoice_vat_breakdown").COLUMNS

INVOICE_DELETE_BEFORE = "        IF OLD.status <> 'draft' THEN\n            RAISE EXCEPTION 'billing: invoice % is finalized (status %) and cannot be deleted',"
INVOICE_DELETE_AFTER = (
    "        IF OLD.status <> 'draft'\n"
    "           AND (OLD.finalized_at IS NULL OR OLD.finalized_at >= now() - interval '7 years') THEN\n"
    "            RAISE EXCEPTION 'billing: invoice % is finalized (status %) and cannot be deleted"
    " before its seven years are over',"
)
LINES_BEFORE = """    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT status INTO invoice_status FROM billing_invoice WHERE id = OLD.invoice_id FOR SHARE;
        IF invoice_status IS NOT NULL AND invoice_status <> 'draft' THEN"""
LINES_AFTER = """    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT status, finalized_at INTO invoice_status, invoice_finalized_at
            FROM billing_invoice WHERE id = OLD.invoice_id FOR SHARE;
        IF invoice_status IS NOT NULL AND invoice_status <> 'draft' AND NOT (
            TG_OP = 'DELETE' AND invoice_finalized_at < now() - interval '7 years'
        ) THEN"""


def forward_sql() -> str:
    sql = freeze.postgres_forward(COLUMNS)
    for before, after in (
        (INVOICE_DELETE_BEFORE, INVOICE_DELETE_AFTER),
        (LINES_BEFORE, LINES_AFTER),
        (
            "    invoice_status text;\n",
            "    invoice_status text;\n    invoice_finalized_at timestamptz;\n",
        ),
    ):
        if before not in sql:
            raise RuntimeError(
                "billing 0006: the freeze trigger's text changed; update this migration"
            )
        sql = sql.replace(before, after)
    return sql


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(freeze.POSTGRES_REVERSE, params=None)
        schema_editor.execute(forward_sql(), params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(freeze.POSTGRES_REVERSE, params=None)
        schema_editor.execute(freeze.postgres_forward(COLUMNS), params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_plain_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
