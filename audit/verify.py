"""Verification of the chain and its checkpoints: reads only, never writes.

``verify_chain`` streams the events in ``seq`` order from a server-side
cursor, recomputes each hash, checks each link and the sequence, checks every
stored checkpoint (signature, key, and the chain's hash at its ``seq``) and,
optionally, a checkpoint exported to an auditor. Problems are reported in
sequence order, so ``first_problem`` names the first broken event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection, transaction

from audit.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    SQL_TIME_FORMAT,
    canonical_details,
    canonical_json,
    canonical_time,
    checkpoint_message,
    row_hash,
)
from audit.keys import key_id_for, signature_is_valid, trusted_public_keys
from audit.models import AuditCheckpoint, AuditEvent
from db.dialect import is_postgresql

CHECKPOINT_FILE_FORMAT = "tillit-audit-checkpoint/1"
MAX_PROBLEMS = 100

HASH_MISMATCH = "hash mismatch"
GAP = "gap"
BROKEN_LINK = "broken link"
BAD_SIGNATURE = "bad signature"
UNTRUSTED_KEY = "untrusted key"
CHECKPOINT_MISMATCH = "checkpoint mismatch"


@dataclass(frozen=True)
class Problem:
    """One reason the log cannot be trusted from ``seq`` on."""

    seq: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"#{self.seq}: {self.kind}: {self.message}"


@dataclass
class VerificationResult:
    """What ``verify_chain`` found."""

    events: int = 0
    last_seq: int = 0
    head_hash: str = GENESIS_HASH
    checkpoints: int = 0
    exported_checkpoint: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None


@dataclass(frozen=True)
class _Checkpoint:
    label: str
    seq: int
    head_hash: str
    created_at: datetime
    key_id: str
    public_key: str
    signature: str
    trusted: bool


def read_checkpoint_file(path: Path) -> dict[str, Any]:
    """Parse an exported checkpoint file; ValueError names what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"checkpoint file {path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FILE_FORMAT:
        raise ValueError(f"checkpoint file {path}: format is not {CHECKPOINT_FILE_FORMAT!r}")
    for name in ("seq", "hash", "created_at", "key_id", "public_key", "signature"):
        if name not in data:
            raise ValueError(f"checkpoint file {path}: field {name!r} is missing")
    try:
        data["created_at_dt"] = datetime.fromisoformat(data["created_at"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint file {path}: created_at is not an ISO time") from exc
    return data


def _stored_checkpoints(trusted: dict[str, str]) -> list[_Checkpoint]:
    return [
        _Checkpoint(
            label=f"checkpoint {cp.pk}",
            seq=cp.seq,
            head_hash=cp.head_hash,
            created_at=cp.created_at,
            key_id=cp.key_id,
            public_key=cp.public_key,
            signature=cp.signature,
            trusted=trusted.get(cp.key_id) == cp.public_key.lower(),
        )
        for cp in AuditCheckpoint.objects.order_by("seq")
    ]


def _file_checkpoint(data: dict[str, Any]) -> _Checkpoint:
    # The auditor kept this file elsewhere: its own public key is the trusted one.
    return _Checkpoint(
        label="exported checkpoint file",
        seq=int(data["seq"]),
        head_hash=str(data["hash"]),
        created_at=data["created_at_dt"],
        key_id=str(data["key_id"]),
        public_key=str(data["public_key"]),
        signature=str(data["signature"]),
        trusted=True,
    )


def _signature_problem(cp: _Checkpoint) -> Problem | None:
    try:
        key_matches = key_id_for(cp.public_key) == cp.key_id
    except ValueError:
        key_matches = False
    if not key_matches:
        return Problem(cp.seq, BAD_SIGNATURE, f"{cp.label}: key id does not match its public key")
    if not cp.trusted:
        return Problem(
            cp.seq,
            UNTRUSTED_KEY,
            f"{cp.label}: signed by key {cp.key_id[:16]}…, which is neither the current "
            "signing key nor listed in AUDIT_TRUSTED_PUBLIC_KEYS",
        )
    message = checkpoint_message(
        seq=cp.seq, head_hash=cp.head_hash, created_at=cp.created_at, key_id=cp.key_id
    )
    if not signature_is_valid(cp.public_key, cp.signature, message):
        return Problem(cp.seq, BAD_SIGNATURE, f"{cp.label}: the Ed25519 signature does not verify")
    return None


_STREAM_SQL = (
    # The server writes the time in canonical_time's form (UTC, microseconds,
    # "+00:00") and details as JSON text: cheaper than datetimes and dicts here.
    f"SELECT seq, to_char(created_at AT TIME ZONE 'UTC', '{SQL_TIME_FORMAT}'), "  # noqa: S608 (a constant)
    "actor_type, actor_id, actor_label, "
    "action, object_type, object_id, ip, user_agent, details::text, prev_hash, hash "
    "FROM audit_auditevent ORDER BY seq"
)


def _stream_rows(chunk_size: int) -> Iterator[tuple[Any, ...]]:
    """Rows in seq order with time and details as canonical text, from a server-side cursor."""
    if is_postgresql():
        # Streaming (libpq chunked rows) lets the server produce the next rows
        # while this process hashes, with O(chunk) memory; binary rows parse faster.
        with transaction.atomic():
            connection.ensure_connection()
            # Django's connection makes client-side-binding cursors, which cannot
            # return binary rows; a plain psycopg cursor on the same connection can.
            with psycopg.Cursor(connection.connection) as cursor:
                cursor.format = psycopg.pq.Format.BINARY
                for row in cursor.stream(_STREAM_SQL, size=chunk_size):
                    yield (*row[:10], canonical_details(row[10]), row[11], row[12])
        return
    fields = (*HASHED_FIELDS, "hash")
    for row in AuditEvent.objects.order_by("seq").values_list(*fields).iterator(chunk_size):
        yield (
            row[0],
            canonical_time(row[1]),
            *row[2:10],
            canonical_json(row[10]).decode("utf-8"),
            row[11],
            row[12],
        )


def verify_chain(
    *,
    checkpoint_file: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 100_000,
    chunk_size: int = 200,
) -> VerificationResult:
    """Recompute the whole chain and check every checkpoint; report problems in seq order."""
    result = VerificationResult()
    checkpoints = _stored_checkpoints(trusted_public_keys())
    result.checkpoints = len(checkpoints)
    if checkpoint_file is not None:
        checkpoints.append(_file_checkpoint(checkpoint_file))
        result.exported_checkpoint = True
    problems: list[Problem] = []
    by_seq: dict[int, list[_Checkpoint]] = {}
    for cp in checkpoints:
        signature_problem = _signature_problem(cp)
        if signature_problem is not None:
            problems.append(signature_problem)
        by_seq.setdefault(cp.seq, []).append(cp)

    chain_problems: list[Problem] = []

    def report(problem: Problem) -> None:
        # A wrecked chain must not fill memory: the first ones are what matter.
        if len(chain_problems) < MAX_PROBLEMS:
            chain_problems.append(problem)

    expected_seq, previous_hash, count = 1, GENESIS_HASH, 0
    for row in _stream_rows(chunk_size):
        seq, stored_hash, prev_hash = row[0], row[12], row[11]
        if seq != expected_seq:
            missing = f"#{expected_seq}" + (f"…#{seq - 1}" if seq > expected_seq + 1 else "")
            report(Problem(expected_seq, GAP, f"{missing} missing: #{seq} follows"))
        elif prev_hash != previous_hash:
            report(Problem(seq, BROKEN_LINK, "prev_hash is not the previous event's hash"))
        if row_hash(*row[:12]) != stored_hash:
            report(Problem(seq, HASH_MISMATCH, "the stored hash is not the hash of its content"))
        if seq in by_seq:
            for cp in by_seq.pop(seq):
                if cp.head_hash != stored_hash:
                    report(
                        Problem(
                            seq,
                            CHECKPOINT_MISMATCH,
                            f"{cp.label} signed a different hash for this event",
                        )
                    )
        expected_seq, previous_hash = seq + 1, stored_hash
        count += 1
        if progress is not None and count % progress_every == 0:
            progress(count)
    for seq, remaining in by_seq.items():
        for cp in remaining:
            kind = GAP if seq >= expected_seq else CHECKPOINT_MISMATCH
            problems.append(
                Problem(seq, kind, f"{cp.label} signed #{seq}, which is not in the chain")
            )
    result.events, result.last_seq, result.head_hash = count, expected_seq - 1, previous_hash
    problems.extend(chain_problems)
    result.problems = sorted(problems, key=lambda p: p.seq)[:MAX_PROBLEMS]
    return result
