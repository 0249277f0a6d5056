"""A signed document is written once: PostgreSQL refuses UPDATE and DELETE of one."""

from django.db import migrations

POSTGRES = """
CREATE OR REPLACE FUNCTION documents_invoicedocument_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'documents: signed document %% is append-only (%% refused)', OLD.id, TG_OP;
END
$$;
CREATE TRIGGER documents_invoicedocument_append_only BEFORE UPDATE OR DELETE
    ON documents_invoicedocument FOR EACH ROW
    EXECUTE FUNCTION documents_invoicedocument_append_only();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS documents_invoicedocument_append_only ON documents_invoicedocument;
DROP FUNCTION IF EXISTS documents_invoicedocument_append_only();
"""
def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("documents", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
