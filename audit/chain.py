"""The hash chain's canonical form: pure functions shared by append, verify and export.

An event's hash is SHA-256 over the UTF-8 bytes of a canonical JSON object of
the fields in ``HASHED_FIELDS`` (keys sorted, no whitespace, non-ASCII kept,
no NaN), where ``created_at`` is written by ``canonical_time`` and
``prev_hash`` is the previous event's hash (``GENESIS_HASH`` for the first
event). A checkpoint signs ``checkpoint_message``. docs/audit.md states the
same rules for auditors; docs/verify_export.py implements them independently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "ip",
    "user_agent",
    "details",
    "prev_hash",
)

_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
_sha256 = hashlib.sha256
# The string escaper json.dumps(ensure_ascii=False) itself uses (C when available).
_string = json.encoder.encode_basestring
# The verifier's hot path calls the json module's C scanner and C encoder
# directly (same output as canonical_json; no cycle check, since parsed JSON
# has no cycles), which halves the cost per row. Pure-Python fallback: the same
# functions through the public API.
_scan: Callable[[str, int], tuple[Any, int]] = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _refuse(value: object) -> None:
    raise TypeError(f"{type(value).__name__} is not JSON")


_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    _encode_parsed = _c_make_encoder(None, _refuse, _string, None, ":", ",", True, False, False)
else:  # pragma: no cover - CPython always has the C encoder

    def _encode_parsed(value: Any, _level: int) -> list[str]:
        return [_encode(value)]


def canonical_time(moment: datetime) -> str:
    """UTC, microseconds, ``+00:00``: the one textual form of an event's time."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8: the same bytes for the same data."""
    return _encode(value).encode("utf-8")


def canonical_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The hashed fields of an event with its time in canonical text form."""
    payload = {name: fields[name] for name in HASHED_FIELDS}
    if isinstance(payload["created_at"], datetime):
        payload["created_at"] = canonical_time(payload["created_at"])
    return payload


def event_hash(fields: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an event's hashed fields."""
    return _sha256(canonical_json(canonical_fields(fields))).hexdigest()


# The chain's hashed text split where the head's values go: the text before the
# previous hash, between it and the new event's seq, and after the seq. Keys sort
# as action < ... < object_type < prev_hash < seq < user_agent.
SEQ_OPEN = '","seq":'
# The canonical time's SQL twin (PostgreSQL to_char of a timestamptz at UTC).
SQL_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'


def hashed_parts(
    actor_type: str,
    actor_id: str,
    actor_label: str,
    action: str,
    object_type: str,
    ip: str | None,
    user_agent: str,
    details_json: str,
) -> tuple[str, str, str, str]:
    """The canonical JSON of an event around the values known only at append time.

    Returns ``(p0, p1, p2, p3)`` such that
    ``p0 + time + p1 + object_id + p2 + prev_hash + SEQ_OPEN + str(seq) + p3`` is
    exactly ``canonical_json(canonical_fields(...))`` (each string escaped by the
    json module's own encoder), where ``time`` is ``canonical_time(created_at)``
    and ``object_id`` and ``prev_hash`` are the insides of their JSON strings.
    PostgreSQL fills in the time, the head's hash and the seq under the chain
    lock (``audit_append_event``, migration 0007), a statement that writes a row
    may fill in that row's id, and the verifier hashes rows without building a
    dict per row.
    """
    s = _string
    return (
        f'{{"action":{s(action)},"actor_id":{s(actor_id)},"actor_label":{s(actor_label)},'
        f'"actor_type":{s(actor_type)},"created_at":"',
        f'","details":{details_json},"ip":{"null" if ip is None else s(ip)},"object_id":"',
        f'","object_type":{s(object_type)},"prev_hash":"',
        f',"user_agent":{s(user_agent)}}}',
    )


def json_inside(value: str) -> str:
    """The inside of ``value``'s JSON string (escaped as canonical_json escapes it)."""
    return _string(value)[1:-1]


def row_hash(
    seq: int,
    created_at: str,
    actor_type: str,
    actor_id: str,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    ip: str | None,
    user_agent: str,
    details_json: str,
    prev_hash: str,
) -> str:
    """``event_hash`` for a stored row: time as canonical text, details as canonical JSON.

    The verifier's hot path (``hashed_parts`` joined with the row's values).
    """
    p0, p1, p2, p3 = hashed_parts(
        actor_type, actor_id, actor_label, action, object_type, ip, user_agent, details_json
    )
    s = _string
    # A stored hash is plain hex; a tampered one is hashed escaped, as written.
    text = (
        f"{p0}{s(created_at)[1:-1]}{p1}{s(object_id)[1:-1]}{p2}{s(prev_hash)[1:-1]}"
        f"{SEQ_OPEN}{int(seq)}{p3}"
    )
    return _sha256(text.encode("utf-8")).hexdigest()


def canonical_details(details_text: str) -> str:
    """Canonical JSON text of a ``details`` object read back as JSON text."""
    if details_text == "{}":
        return "{}"
    return "".join(_encode_parsed(_scan(details_text, 0)[0], 0))


def export_line(fields: dict[str, Any], hash_: str) -> str:
    """One JSON Lines record of an archive: the canonical hashed fields plus ``hash``."""
    payload = canonical_fields(fields)
    payload["hash"] = hash_
    return _encode(payload)


def checkpoint_message(*, seq: int, head_hash: str, created_at: datetime, key_id: str) -> bytes:
    """The exact bytes a checkpoint signs: canonical JSON of seq, hash, created_at, key_id."""
    return canonical_json(
        {
            "seq": seq,
            "hash": head_hash,
            "created_at": canonical_time(created_at),
            "key_id": key_id,
        }
    )
