"""The appended event's time is never earlier than the head's (PostgreSQL).

``audit_append_event`` (migration 0005) stored the time the writer took before
it waited for the chain lock, so an event could follow one with a later time.
Now the function takes ``greatest(requested time, head's time)`` under the lock
and hashes that time itself, as it already did the head's hash and the seq, so
``created_at`` never goes backwards along ``seq`` (archive periods rely on it).
The writer sends the event's canonical JSON in the pieces around those values
(``audit.chain.hashed_parts``); the time is written as the verifier reads it
(``audit.chain.SQL_TIME_FORMAT``).
"""

from django.db import migrations

DROP_PREVIOUS = """
DROP FUNCTION IF EXISTS audit_append_event(
    bigint, timestamptz, varchar, varchar, varchar, varchar, varchar, varchar, varchar,
    varchar, jsonb, text, text
);
"""

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
    p_hash_to_time text,
    p_hash_to_prev text,
    p_hash_after text
)
RETURNS TABLE (
    event_seq bigint, event_created_at timestamptz, event_prev_hash varchar, event_hash varchar
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head_seq bigint;
    head_hash varchar;
    head_time timestamptz;
    new_time timestamptz;
    new_hash varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT e.seq, e.hash, e.created_at INTO head_seq, head_hash, head_time
        FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
    IF head_seq IS NULL THEN
        head_seq := 0;
        head_hash := repeat('0', 64);
    END IF;
    new_time := greatest(p_created_at, head_time);  -- greatest() ignores a NULL
    new_hash := encode(sha256(convert_to(
        p_hash_to_time || to_char(new_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        || p_hash_to_prev || head_hash || '","seq":' || (head_seq + 1)::text || p_hash_after,
        'UTF8')), 'hex');
    INSERT INTO audit_auditevent (
        seq, created_at, actor_type, actor_id, actor_label, action, object_type,
        object_id, ip, user_agent, details, prev_hash, hash
    ) VALUES (
        head_seq + 1, new_time, p_actor_type, p_actor_id, p_actor_label, p_action,
        p_object_type, p_object_id, p_ip, p_user_agent, p_details, head_hash, new_hash
    );
    RETURN QUERY SELECT head_seq + 1, new_time, head_hash, new_hash;
END
$$;
"""

BACKWARD = """
DROP FUNCTION IF EXISTS audit_append_event(
    bigint, timestamptz, varchar, varchar, varchar, varchar, varchar, varchar, varchar,
    varchar, jsonb, text, text, text
);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_PREVIOUS, params=None)
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        schema_editor.execute(BACKWARD, params=None)
        previous = import_module("audit.migrations.0005_append_event_function")
        schema_editor.execute(previous.FORWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_plain_indexes")]

    operations = [migrations.RunPython(forward, backward)]
