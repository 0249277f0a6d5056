"""Appending to the audit chain: the only code that writes AuditEvent rows."""

from __future__ import annotations

import functools
import ipaddress
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import SYSTEM, AuditEntry
from audit.archive import ArchiveResult, verify_archive, write_archive
from audit.chain import (
    GENESIS_HASH,
    canonical_json,
    checkpoint_message,
    event_hash,
    hashed_parts,
    json_inside,
)
from audit.exceptions import AuditArchiveError, AuditError, InvalidAuditEvent
from audit.keys import key_id_for, load_signing_key, public_key_hex, trusted_public_keys
from audit.models import AuditCheckpoint, AuditEvent
from audit.schedules import ensure_schedule
from audit.selectors import get_first_checkpoint_covering
from db.compiled import mark_inserted
from db.dialect import is_postgresql
from db.prepared import hot

ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

# A details key is refused if one of its words is one of these...
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pan",
        "cvc",
        "cvv",
        "cvc2",
        "secret",
        "token",
        "otp",
        "pin",
        "passphrase",
        "private",
        "totp",
        "seed",
    }
)
# ...or if it contains one of these anywhere ("csrftoken", "newpassword").
_SECRET_FRAGMENTS = ("password", "secret", "token", "passphrase", "privatekey", "cardnumber")
_WORD_SPLIT = re.compile(r"[^a-zA-Z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

# pg_advisory_xact_lock key that serializes appends: "tillit" in ASCII.
_CHAIN_LOCK_KEY = 0x74696C6C6974

CHECKPOINT_SCHEDULE_NAME = "audit.checkpoint"
CHECKPOINT_TASK = "audit.tasks.create_scheduled_checkpoint"


@functools.lru_cache(maxsize=1024)  # keys come from code: a few dozen, asked on every event
def _looks_secret(key: str) -> bool:
    words = {w.lower() for w in _WORD_SPLIT.split(key) if w}
    squashed = re.sub(r"[^a-z0-9]", "", key.lower())
    return bool(words & _SECRET_WORDS) or any(f in squashed for f in _SECRET_FRAGMENTS)


def _check_details(value: Any, path: str) -> None:
    """Plain JSON only (no floats: money is integers), and no secret-looking key."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        raise InvalidAuditEvent(f"details{path}: floats are not allowed; use int or str")
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_details(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidAuditEvent(f"details{path}: keys must be strings, not {key!r}")
            if _looks_secret(key):
                raise InvalidAuditEvent(
                    f"details{path}.{key}: looks like a secret and may not be recorded"
                )
            _check_details(item, f"{path}.{key}")
        return
    raise InvalidAuditEvent(
        f"details{path}: {type(value).__name__} is not JSON-serializable; pass str or int"
    )


def describe_actor(actor: Any) -> tuple[str, str, str]:
    """(actor_type, actor_id, actor_label) for a user, a model instance or SYSTEM."""
    if actor == SYSTEM:
        return "system", "", "system"
    if isinstance(actor, AnonymousUser):
        return "anonymous", "", "anonymous"
    if isinstance(actor, get_user_model()):
        return "user", str(actor.pk), actor.get_username()[:200]
    if isinstance(actor, models.Model) and actor.pk is not None:
        return actor._meta.label_lower, str(actor.pk), str(actor)[:200]
    raise InvalidAuditEvent(
        f"actor: expected a user, a saved model instance or audit.SYSTEM, not {actor!r}"
    )


def _request_facts(request: HttpRequest | None) -> tuple[str | None, str]:
    if request is None:
        return None, ""
    ip: str | None = None
    raw = request.META.get("REMOTE_ADDR") or ""
    if raw:
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:
            ip = None
        else:
            # IPv4-mapped IPv6 is written as the IPv4 address it carries.
            mapped = getattr(address, "ipv4_mapped", None)
            ip = str(mapped or address)
    return ip, str(request.META.get("HTTP_USER_AGENT", ""))[:512]


_APPEND_SQL = (
    "audit_append_event(%s, %s::timestamptz, %s, %s, %s, %s, %s, {object_id}, %s, %s,"
    " %s::jsonb, %s, {to_prev}, %s)"
)


_APPENDED = "event_seq, event_created_at, event_prev_hash, event_hash"


def _lock_chain_and_read_head(cursor: Any) -> tuple[int, str]:
    """Serialize appends so the chain never forks; the lock is held until the caller commits.

    On PostgreSQL one round trip takes the advisory lock and then reads the head
    under a fresh snapshot (``audit_lock_head``, migration 0003). SQLite
    serializes writers itself; the primary key on ``seq`` refuses a fork anyway.
    """
    if is_postgresql():
        cursor.execute("SELECT head_seq, head_hash FROM audit_lock_head(%s)", [_CHAIN_LOCK_KEY])
    else:
        cursor.execute("SELECT seq, hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1")
    head = cursor.fetchone()
    return (int(head[0]), str(head[1])) if head else (0, GENESIS_HASH)


@dataclass(frozen=True)
class PreparedEvent:
    """A checked event not yet in the chain: everything but its seq and hashes."""

    created_at: datetime
    actor_type: str
    actor_id: str
    actor_label: str
    action: str
    object_type: str
    object_id: str | None
    ip: str | None
    user_agent: str
    details: dict[str, Any]

    def append_sql(self, object_id_sql: str = "") -> tuple[str, list[Any]]:
        """``audit_append_event(...)`` and its parameters, to call in a statement (PostgreSQL).

        The function returns ``(event_seq, event_created_at, event_prev_hash,
        event_hash)``: under the chain lock it takes the later of ``created_at`` and
        the head's time (time never goes backwards along seq), and hashes that
        time, the head's hash and the seq into the pieces sent here.
        ``object_id_sql`` is an SQL expression for an id the database assigns in the
        same statement (e.g. ``w.id::text`` from a ``WITH w AS (INSERT ... RETURNING
        id)``); it must give digits. Without it, the event's own ``object_id`` is
        sent as a parameter.
        """
        details_json = canonical_json(self.details).decode("utf-8")
        p0, p1, p2, p3 = hashed_parts(
            self.actor_type,
            self.actor_id,
            self.actor_label,
            self.action,
            self.object_type,
            self.ip,
            self.user_agent,
            details_json,
        )
        head = [_CHAIN_LOCK_KEY, self.created_at, self.actor_type, self.actor_id]
        head += [self.actor_label, self.action, self.object_type]
        tail = [self.ip, self.user_agent, details_json, p0]
        if object_id_sql:
            sql = _APPEND_SQL.format(
                object_id=object_id_sql, to_prev=f"%s || {object_id_sql} || %s"
            )
            return sql, [*head, *tail, p1, p2, p3]
        object_id = self.object_id or ""
        sql = _APPEND_SQL.format(object_id="%s", to_prev="%s")
        return sql, [*head, object_id, *tail, f"{p1}{json_inside(object_id)}{p2}", p3]

    def to_event(
        self, object_id: str, seq: int, created_at: datetime, prev_hash: str, hash_: str
    ) -> AuditEvent:
        event = AuditEvent(
            seq=seq,
            created_at=created_at,
            actor_type=self.actor_type,
            actor_id=self.actor_id,
            actor_label=self.actor_label,
            action=self.action,
            object_type=self.object_type,
            object_id=object_id,
            ip=self.ip,
            user_agent=self.user_agent,
            details=dict(self.details),
            prev_hash=prev_hash,
            hash=hash_,
        )
        if hash_:  # written by the database
            mark_inserted(event, seq, using=connection.alias)
        return event

    def with_details(self, **more: Any) -> PreparedEvent:
        """The same event with ``more`` details (checked as ``prepare_event`` checks)."""
        _check_details(more, "")
        return replace(self, details={**self.details, **more})


def prepare_event(
    action: str,
    *,
    actor: Any,
    object_type: str,
    object_id: str | None,
    request: HttpRequest | None,
    details: dict[str, Any],
) -> PreparedEvent:
    """Check an event before anything is written: InvalidAuditEvent names what is wrong.

    An action outside the dotted pattern, non-JSON or secret-looking details and
    an unknown actor are refused. ``object_id`` None: the database supplies it
    (``PreparedEvent.append_sql``).
    """
    if not isinstance(action, str) or not ACTION_PATTERN.match(action) or len(action) > 100:
        raise InvalidAuditEvent(
            f"action: {action!r} is not a dotted lower-case name like 'invoice.finalized'"
        )
    _check_details(details, "")
    actor_type, actor_id, actor_label = describe_actor(actor)
    ip, user_agent = _request_facts(request)
    return PreparedEvent(
        created_at=timezone.now(),
        actor_type=actor_type,
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        object_type=object_type,
        object_id=object_id,
        ip=ip,
        user_agent=user_agent,
        details=dict(details),
    )


def record_event(
    action: str,
    *,
    actor: Any,
    obj: models.Model | None,
    request: HttpRequest | None,
    details: dict[str, Any],
    object_ref: tuple[str, str] | None = None,
) -> AuditEvent:
    """Append one event after the current head, in the caller's transaction.

    The append commits or rolls back with the change it describes.
    ``object_ref`` (type label, id) names an object that no longer exists, such
    as one the admin just deleted. Bad input
    (an action outside the dotted pattern, non-JSON or secret-looking details,
    an unknown actor) raises InvalidAuditEvent before anything is written.
    """
    object_type, object_id = _object_facts(obj, object_ref)
    prepared = prepare_event(
        action,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        request=request,
        details=details,
    )
    return append_prepared(prepared, object_id)


def _object_facts(
    obj: models.Model | None, object_ref: tuple[str, str] | None = None
) -> tuple[str, str]:
    """(object_type, object_id) of a saved object, or of ``object_ref``, or ("", "")."""
    if obj is None:
        return object_ref or ("", "")
    if obj.pk is None:
        raise InvalidAuditEvent("obj: the object must be saved before it is recorded")
    return obj._meta.label_lower, str(obj.pk)


def append_prepared(prepared: PreparedEvent, object_id: str) -> AuditEvent:
    """Append a prepared event for ``object_id`` after the current head, in the caller's
    transaction (see ``record_event``)."""
    if is_postgresql():
        # One statement: the database hashes the event against the head it reads
        # under the chain lock; no transaction of its own is needed.
        sql, params = replace(prepared, object_id=object_id).append_sql()
        with connection.cursor() as cursor:
            # Only the constant call text is formatted in; every value is a parameter.
            # The text is the same for every event: prepared once per connection.
            cursor.execute(hot(f"SELECT {_APPENDED} FROM {sql}"), params)  # noqa: S608
            seq, created_at, prev_hash, hash_ = cursor.fetchone()
        return prepared.to_event(object_id, int(seq), created_at, str(prev_hash), str(hash_))
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        head_seq, prev_hash = _lock_chain_and_read_head(cursor)
        # The time is taken under the lock: never earlier than the head's.
        now = max(prepared.created_at, timezone.now())
        event = prepared.to_event(object_id, head_seq + 1, now, prev_hash, "")
        event.hash = event_hash(event.hashed_fields())
        event.save(force_insert=True)
    return event


def _prepare_entry(entry: AuditEntry, *, actor: Any, request: HttpRequest | None) -> PreparedEvent:
    """``prepare_event`` for one ``AuditEntry`` (its object saved, its details a mapping)."""
    object_type, object_id = _object_facts(entry.obj)
    if not isinstance(entry.details, Mapping):
        raise InvalidAuditEvent(f"details: expected a mapping, not {type(entry.details).__name__}")
    return prepare_event(
        entry.action,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        request=request,
        details=dict(entry.details),
    )


def pending_event(
    action: str,
    *,
    actor: Any,
    obj: models.Model | None,
    request: HttpRequest | None,
    details: dict[str, Any],
) -> PreparedEvent:
    """``audit.pending_event``: an event checked now, appended by ``write_with_event``.

    ``obj`` saved: the event is about it. ``obj`` not yet saved (no primary key): the
    event is about the row the write statement inserts, whose id it returns.
    """
    if obj is not None and obj.pk is None:
        object_type, object_id = obj._meta.label_lower, None
    else:
        object_type, object_id = _object_facts(obj)
    return prepare_event(
        action,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        request=request,
        details=details,
    )


def write_with_event(
    sql: str,
    params: Sequence[Any],
    event: PreparedEvent,
    *,
    then: str = "",
    then_params: Sequence[Any] = (),
) -> Any:
    """``audit.write_with_event``: run one write and append ``event`` for the row it
    wrote, in the caller's transaction; see docs/audit.md, "One statement"."""
    if not is_postgresql():
        if then:
            raise AuditError("write_with_event: `then` statements need PostgreSQL")
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            if row is None:
                return None
            append_prepared(event, event.object_id or str(row[0]))
        return row[0]
    if event.object_id is None:
        call, event_params = event.append_sql("r.written::text")
    else:
        call, event_params = event.append_sql()
    also = f", {then}" if then else ""
    with connection.cursor() as cursor:
        cursor.execute(
            # Only code's constant texts are formatted in; every value is a parameter.
            hot(
                f"WITH w AS ({sql}){also} SELECT r.written"  # noqa: S608
                f" FROM (SELECT * FROM w LIMIT 1) AS r(written) CROSS JOIN LATERAL {call} AS a"
            ),
            [*params, *then_params, *event_params],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


# Rows per INSERT of record_events: 13 columns each, well under PostgreSQL's
# 65,535 bind parameters (and Django splits further on SQLite).
_MANY_BATCH = 2000


def record_events(
    entries: Iterable[AuditEntry], *, actor: Any, request: HttpRequest | None
) -> list[AuditEvent]:
    """Append several events, in order, after the current head, in the caller's transaction.

    Every entry is checked as ``record_event`` checks one, before anything is
    written (one bad entry writes none). Then one statement takes the chain's
    lock and reads its head, the events are hashed one after another here (the
    hash of ``audit.chain``, which the verifier recomputes) and the rows go in by
    one multi-row INSERT per ``_MANY_BATCH``: the same events, each its own link,
    that as many ``record_event`` calls would append. A single entry takes
    ``record_event``'s one-statement path.
    """
    prepared = [_prepare_entry(entry, actor=actor, request=request) for entry in entries]
    if not prepared:
        return []
    if len(prepared) == 1:
        return [append_prepared(prepared[0], prepared[0].object_id or "")]
    # No savepoint: the events belong to the caller's transaction, and the chain's
    # lock is held until that transaction ends.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        head_seq, head_hash = _lock_chain_and_read_head(cursor)
        # The time is taken under the lock: never earlier than the head's.
        now = timezone.now()
        events = []
        for one in prepared:
            at = max(one.created_at, now)
            event = one.to_event(one.object_id or "", head_seq + 1, at, head_hash, "")
            event.hash = event_hash(event.hashed_fields())
            events.append(event)
            head_seq, head_hash = event.seq, event.hash
        AuditEvent.objects.bulk_create(events, batch_size=_MANY_BATCH)
    return events


def create_checkpoint(*, by: Any, only_if_new_events: bool = False) -> AuditCheckpoint | None:
    """Sign the chain's head (seq, hash) with the Ed25519 key file; record audit.checkpointed.

    The head is read under the chain lock, so it is the head when the checkpoint
    commits. The private key stays in its file (production refuses to sign
    without one). With ``only_if_new_events`` (the schedule), nothing happens
    when the only event since the last checkpoint is that checkpoint's own.
    """
    key = load_signing_key()
    public_hex = public_key_hex(key)
    key_id = key_id_for(public_hex)
    with transaction.atomic(), connection.cursor() as cursor:
        head_seq, head_hash = _lock_chain_and_read_head(cursor)
        if head_seq == 0:
            if only_if_new_events:
                return None
            raise AuditError("the audit log is empty: there is no head to sign yet")
        if only_if_new_events:
            last = AuditCheckpoint.objects.order_by("-seq").values_list("seq", flat=True).first()
            if last is not None and head_seq <= last + 1:
                return None
        created_at = timezone.now()
        message = checkpoint_message(
            seq=head_seq, head_hash=head_hash, created_at=created_at, key_id=key_id
        )
        checkpoint = AuditCheckpoint.objects.create(
            seq=head_seq,
            head_hash=head_hash,
            created_at=created_at,
            key_id=key_id,
            public_key=public_hex,
            signature=key.sign(message).hex(),
        )
        record_event(
            "audit.checkpointed",
            actor=by,
            obj=checkpoint,
            request=None,
            details={"checkpoint_seq": head_seq, "head_hash": head_hash, "key_id": key_id},
        )
    return checkpoint


def register_checkpoint_schedule() -> None:
    """Make exactly one django-q2 schedule run the checkpoint every AUDIT_CHECKPOINT_MINUTES.

    Idempotent (run after every ``migrate``); deployment configuration rather
    than an event, so it is not recorded in the chain.
    """
    from django_q.models import Schedule

    ensure_schedule(
        CHECKPOINT_SCHEDULE_NAME,
        func=CHECKPOINT_TASK,
        schedule_type=Schedule.MINUTES,
        minutes=settings.AUDIT_CHECKPOINT_MINUTES,
    )


def archive_period(
    *,
    start: datetime | None,
    end: datetime,
    out_dir: Path,
    name: str,
    by: Any,
    progress: Callable[[int], None] | None = None,
) -> ArchiveResult:
    """Export the closed period [start, end) with its covering checkpoint; record audit.archived.

    The files are written to ``out_dir/name.partial``, verified (hashes, links,
    signature), and only then renamed to ``out_dir/name`` and recorded. Nothing
    is ever deleted from the database: the log keeps every event.
    """
    if end > timezone.now():
        raise AuditArchiveError(f"period: it ends at {end.isoformat()}, which is not yet closed")
    target = out_dir / name
    partial = out_dir / f"{name}.partial"
    for path in (target, partial):
        if path.exists():
            raise AuditArchiveError(f"out: {path} already exists; archives are never overwritten")
    in_period = AuditEvent.objects.filter(created_at__lt=end)
    if start is not None:
        in_period = in_period.filter(created_at__gte=start)
    bounds = in_period.aggregate(first=models.Min("seq"), last=models.Max("seq"))
    if bounds["first"] is None:
        raise AuditArchiveError("period: there are no events in it")
    first_seq, last_seq = int(bounds["first"]), int(bounds["last"])
    checkpoint = get_first_checkpoint_covering(last_seq) or create_checkpoint(by=by)
    assert checkpoint is not None  # create_checkpoint only skips on request
    manifest_sha256 = write_archive(
        partial,
        first_seq=first_seq,
        last_seq=last_seq,
        checkpoint=checkpoint,
        period_start=start,
        period_end=end,
        progress=progress,
    )
    problems = verify_archive(partial, trusted_public_keys=trusted_public_keys())
    if problems:
        raise AuditArchiveError(
            f"the export in {partial} failed its verification and was not recorded: "
            + "; ".join(problems[:5])
        )
    partial.rename(target)
    try:
        record_event(
            "audit.archived",
            actor=by,
            obj=None,
            request=None,
            details={
                "period_start": start.isoformat() if start else None,
                "period_end": end.isoformat(),
                "first_seq": first_seq,
                "last_seq": last_seq,
                "checkpoint_seq": checkpoint.seq,
                "manifest_sha256": manifest_sha256,
                "directory": name,
                "path": str(target.resolve()),
            },
        )
    except Exception:
        # An archive the log does not know about must not look finished.
        shutil.move(str(target), str(partial))
        raise
    return ArchiveResult(
        directory=target,
        first_seq=first_seq,
        last_seq=last_seq,
        events=last_seq - first_seq + 1,
        checkpoint_seq=checkpoint.seq,
        manifest_sha256=manifest_sha256,
    )
