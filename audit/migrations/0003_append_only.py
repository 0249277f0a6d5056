"""PostgreSQL only: make the event and checkpoint tables append-only.

A statement-level trigger refuses every UPDATE, DELETE and TRUNCATE, whoever
issues it (ORM, raw SQL, admin). Only a database superuser can get past it
(``ALTER TABLE ... DISABLE TRIGGER`` or ``session_replication_role``); the
hash chain and the signed checkpoints then expose what was changed.

``audit_lock_head()`` takes the chain's advisory lock and reads the head in one
round trip; as a VOLATILE plpgsql function its SELECT runs under a snapshot
taken after the lock is granted, so a writer always sees the previous commit.
SQLite (the demo) has neither; appends there are serialized by SQLite itself.
"""

from django.db import migrations

TABLES = ("audit_auditevent", "audit_auditcheckpoint")

FORWARD = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING HINT = 'Events are never changed or removed; see docs/audit.md.';
END
$$;

CREATE OR REPLACE FUNCTION audit_lock_head(lock_key bigint)
RETURNS TABLE (head_seq bigint, head_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY SELECT e.seq, e.hash FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
END
$$;
"""

TRIGGERS = """
CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FORWARD, params=None)
    for table in TABLES:
        schema_editor.execute(TRIGGERS.format(table=table), params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(BACKWARD.format(table=table))
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_lock_head(bigint)")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_checkpoint")]

    operations = [migrations.RunPython(forward, backward)]
