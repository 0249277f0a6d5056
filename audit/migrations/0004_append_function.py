"""Append an event in one round trip when the writer knows the head (PostgreSQL).

``ip`` becomes plain text: the chain hashes the address exactly as stored,
whatever the database's or Python's way of printing IPv6 addresses.

``audit_append`` takes the chain's advisory lock, reads the head under a
fresh snapshot and inserts the event only if the head is the one the client
hashed against; otherwise it inserts nothing and returns the real head, and
the client hashes again. A writer that appended last (the usual case for one
busy process) pays one statement per event instead of two.
"""

from django.db import migrations, models

FORWARD = """
CREATE OR REPLACE FUNCTION audit_append(
    lock_key bigint,
    expected_seq bigint,
    expected_hash varchar,
    p_created_at timestamptz,
    p_actor_type varchar,
    p_actor_id varchar,
    p_actor_label varchar,
    p_action varchar,
    p_object_type varchar,
    p_object_id varchar,
    p_ip varchar,
    p_user_agent varchar,
    p_details jsonb,
    p_hash varchar
)
RETURNS TABLE (appended boolean, head_seq bigint, head_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current_seq bigint;
    current_hash varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT e.seq, e.hash INTO current_seq, current_hash
        FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
    IF current_seq IS NULL THEN
        current_seq := 0;
        current_hash := repeat('0', 64);
    END IF;
    IF current_seq <> expected_seq OR current_hash <> expected_hash THEN
        RETURN QUERY SELECT false, current_seq, current_hash;
        RETURN;
    END IF;
    INSERT INTO audit_auditevent (
        seq, created_at, actor_type, actor_id, actor_label, action, object_type,
        object_id, ip, user_agent, details, prev_hash, hash
    ) VALUES (
        expected_seq + 1, p_created_at, p_actor_type, p_actor_id, p_actor_label, p_action,
        p_object_type, p_object_id, p_ip, p_user_agent, p_details, expected_hash, p_hash
    );
    RETURN QUERY SELECT true, expected_seq + 1, p_hash;
END
$$;
"""

BACKWARD = """
DROP FUNCTION IF EXISTS audit_append(
    bigint, bigint, varchar, timestamptz, varchar, varchar, varchar, varchar, varchar,
    varchar, varchar, varchar, jsonb, varchar
);
"""


IP_AS_TEXT = """
ALTER TABLE audit_auditevent ALTER COLUMN ip TYPE varchar(45) USING host(ip);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # host(): the address without a netmask (a plain cast would add "/32").
        schema_editor.execute(IP_AS_TEXT, params=None)
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)
        schema_editor.execute(
            "ALTER TABLE audit_auditevent ALTER COLUMN ip TYPE inet USING ip::inet", params=None
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_append_only")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="ip",
                    field=models.CharField(blank=True, max_length=45, null=True),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
