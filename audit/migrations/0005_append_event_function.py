"""Append an event in one statement that never has to be repeated (PostgreSQL).

``audit_append_event`` takes the chain's advisory lock, reads the head under a
fresh snapshot and hashes the event against it itself: the writer sends the
event's canonical JSON in two pieces (``audit.chain.hashed_parts``), and the
function puts the head's hash and the new seq between them, exactly as the
verifier does. So an append is one statement whoever appended last, and it can
run inside a larger statement (a row and its event written together, e.g. the
vault's tokenize). Replaces ``audit_append`` (migration 0004), which made the
writer guess the head and try again when another process had moved it.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_append_event(
    lock_key bigint,
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
    p_hashed_before text,
    p_hashed_after text
)
RETURNS TABLE (event_seq bigint, event_prev_hash varchar, event_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head_seq bigint;
    head_hash varchar;
    new_hash varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT e.seq, e.hash INTO head_seq, head_hash
        FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
    IF head_seq IS NULL THEN
        head_seq := 0;
        head_hash := repeat('0', 64);
    END IF;
    new_hash := encode(sha256(convert_to(
        p_hashed_before || head_hash || '","seq":' || (head_seq + 1)::text || p_hashed_after,
        'UTF8')), 'hex');
    INSERT INTO audit_auditevent (
        seq, created_at, actor_type, actor_id, actor_label, action, object_type,
        object_id, ip, user_agent, details, prev_hash, hash
    ) VALUES (
        head_seq + 1, p_created_at, p_actor_type, p_actor_id, p_actor_label, p_action,
        p_object_type, p_object_id, p_ip, p_user_agent, p_details, head_hash, new_hash
    );
    RETURN QUERY SELECT head_seq + 1, head_hash, new_hash;
END
$$;
DROP FUNCTION IF EXISTS audit_append(
    bigint, bigint, varchar, timestamptz, varchar, varchar, varchar, varchar, varchar,
    varchar, varchar, varchar, jsonb, varchar
);
"""

BACKWARD = """
DROP FUNCTION IF EXISTS audit_append_event(
    bigint, timestamptz, varchar, varchar, varchar, varchar, varchar, varchar, varchar,
    varchar, jsonb, text, text
);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)
        # audit_append comes back with migration 0004's forward SQL.
        from importlib import import_module

        previous = import_module("audit.migrations.0004_append_function")
        schema_editor.execute(previous.FORWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_append_function")]

    operations = [migrations.RunPython(forward, backward)]
