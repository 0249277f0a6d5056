"""PostgreSQL only: a signed-off security review can never change or go away.

A row-level trigger refuses UPDATE and DELETE of a review whose status is ``signed``
(the sign-off itself, draft -> signed, is the last change a review gets). The review's
PDF hash is also in the audit log (``review.signed_off``), which exposes a change made
past the trigger by a database superuser. SQLite (the demo) relies on the service alone.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_refuse_signed_review_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'signed' THEN
        RAISE EXCEPTION 'security review % is signed off: % is refused', OLD.id, TG_OP
            USING HINT = 'A signed review is immutable; see docs/audit.md.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_securityreview_signed_immutable
    BEFORE UPDATE OR DELETE ON audit_securityreview
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_signed_review_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_securityreview_signed_immutable ON audit_securityreview;
DROP FUNCTION IF EXISTS audit_refuse_signed_review_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_incidents_and_reviews")]

    operations = [migrations.RunPython(forward, backward)]
