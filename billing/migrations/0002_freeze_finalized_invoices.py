"""Database triggers: a finalized invoice and its lines can never change.

Whatever path a write takes (a service, a bulk ``QuerySet.update``, the admin,
raw SQL), PostgreSQL refuses to change the content of an invoice that left
DRAFT, to send it back to DRAFT, to delete it, or to insert, change or delete a
line of it. Only ``status``, ``amount_paid``, ``amount_credited`` and
``updated_at`` may still move (payments, credit notes, void, uncollectible).
"""

from django.db import migrations

FROZEN_COLUMNS = [
    "kind",
    "credited_invoice_id",
    "series_id",
    "number",
    "display_number",
    "customer_id",
    "issue_date",
    "due_date",
    "payment_terms_days",
    "currency",
    "seller_snapshot",
    "buyer_snapshot",
    "net_total",
    "vat_total",
    "gross_total",
    "ocr_reference",
    "notes",
    "finalized_at",
    "created_at",
]


def postgres_forward(columns):
    _NEW = ", ".join(f"NEW.{c}" for c in columns)
    _OLD = ", ".join(f"OLD.{c}" for c in columns)
    return f"""
CREATE OR REPLACE FUNCTION billing_invoice_freeze() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'billing: invoice % is finalized (status %) and cannot be deleted',
                OLD.id, OLD.status;
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (NEW.status = 'draft' OR ROW({_NEW}) IS DISTINCT FROM ROW({_OLD})) THEN
        RAISE EXCEPTION 'billing: invoice % is finalized (status %); its content cannot change',
            OLD.id, OLD.status;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER billing_invoice_freeze BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_freeze();

CREATE OR REPLACE FUNCTION billing_invoiceline_freeze() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    invoice_status text;
BEGIN
    -- FOR SHARE waits for a finalize that holds the invoice row lock, then sees
    -- its committed status: no line can slip in beside a finalization.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT status INTO invoice_status FROM billing_invoice WHERE id = OLD.invoice_id FOR SHARE;
        IF invoice_status IS NOT NULL AND invoice_status <> 'draft' THEN
            RAISE EXCEPTION 'billing: invoice % is finalized (status %); its lines cannot change',
                OLD.invoice_id, invoice_status;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT status INTO invoice_status FROM billing_invoice WHERE id = NEW.invoice_id FOR SHARE;
        IF invoice_status IS NOT NULL AND invoice_status <> 'draft' THEN
            RAISE EXCEPTION 'billing: invoice % is finalized (status %); its lines cannot change',
                NEW.invoice_id, invoice_status;
        END IF;
        RETURN NEW;
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER billing_invoiceline_freeze BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_freeze();
"""


POSTGRES_FORWARD = postgres_forward(FROZEN_COLUMNS)

POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS billing_invoiceline_freeze ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_freeze();
DROP TRIGGER IF EXISTS billing_invoice_freeze ON billing_invoice;
DROP FUNCTION IF EXISTS billing_invoice_freeze();
"""

# SQLite (the zero-setup demo) gets no trigger: Django rebuilds SQLite tables on
# schema changes, which breaks triggers that name other tables. There the
# services' checks are the guard; production and the test suite run PostgreSQL.
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS billing_invoice_freeze_update",
    "DROP TRIGGER IF EXISTS billing_invoice_freeze_delete",
    "DROP TRIGGER IF EXISTS billing_invoiceline_freeze_insert",
    "DROP TRIGGER IF EXISTS billing_invoiceline_freeze_update",
    "DROP TRIGGER IF EXISTS billing_invoiceline_freeze_delete",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        statements = statements_by_vendor.get(vendor)
        if statements is None:
            return
        if isinstance(statements, str):
            statements = [statements]
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD}),
            _run({"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE}),
        ),
    ]
