"""Archive exports: a closed period as JSON Lines with the checkpoint that covers it.

An archive directory holds:

- ``events.jsonl``: the period's events, one canonical JSON object per line
  (the hashed fields plus ``hash``), in ``seq`` order;
- ``anchor.jsonl``: the events after the period up to the covering checkpoint,
  so the chain can be followed from the period to a signed head;
- ``checkpoint.json``: that checkpoint, with its public key;
- ``archive.json``: what the archive covers;
- ``SHA256SUMS``: SHA-256 of each file above (``sha256sum -c`` format).

``verify_archive`` checks all of it; docs/verify_export.py is an auditor's
independent implementation of the same rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.chain import canonical_json, canonical_time, checkpoint_message, export_line
from audit.keys import key_id_for, signature_is_valid
from audit.models import AuditCheckpoint, AuditEvent
from audit.selectors import checkpoint_document

ARCHIVE_FORMAT = "tillit-audit-archive/1"
EVENTS_FILE = "events.jsonl"
ANCHOR_FILE = "anchor.jsonl"
CHECKPOINT_FILE = "checkpoint.json"
INFO_FILE = "archive.json"
SUMS_FILE = "SHA256SUMS"


@dataclass(frozen=True)
class ArchiveResult:
    """What ``archive_period`` wrote and verified."""

    directory: Path
    first_seq: int
    last_seq: int
    events: int
    checkpoint_seq: int
    manifest_sha256: str


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` -> [first instant of the month, first instant of the next), in UTC."""
    try:
        start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"period {period!r} is not YYYY-MM") from exc
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else (start.replace(month=start.month + 1))
    )
    return start, end


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_archive(
    directory: Path,
    *,
    first_seq: int,
    last_seq: int,
    checkpoint: AuditCheckpoint,
    period_start: datetime | None,
    period_end: datetime,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 100_000,
) -> str:
    """Write the archive into ``directory`` (which must not exist); return SHA256SUMS's hash."""
    directory.mkdir(parents=True)
    rows = (
        AuditEvent.objects.filter(seq__gte=first_seq, seq__lte=checkpoint.seq)
        .order_by("seq")
        .iterator(chunk_size=5000)
    )
    written = 0
    first_prev_hash = ""
    with (
        (directory / EVENTS_FILE).open("w", encoding="utf-8") as events,
        (directory / ANCHOR_FILE).open("w", encoding="utf-8") as anchor,
    ):
        for event in rows:
            if written == 0:
                first_prev_hash = event.prev_hash
            target = events if event.seq <= last_seq else anchor
            target.write(export_line(event.hashed_fields(), event.hash) + "\n")
            written += 1
            if progress is not None and written % progress_every == 0:
                progress(written)
    (directory / CHECKPOINT_FILE).write_text(
        json.dumps(checkpoint_document(checkpoint), indent=2) + "\n", encoding="utf-8"
    )
    info = {
        "format": ARCHIVE_FORMAT,
        "period_start": canonical_time(period_start) if period_start else None,
        "period_end": canonical_time(period_end),
        "first_seq": first_seq,
        "last_seq": last_seq,
        "prev_hash": first_prev_hash,
        "checkpoint_seq": checkpoint.seq,
    }
    (directory / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    sums = "".join(
        f"{_sha256_file(directory / name)}  {name}\n"
        for name in (EVENTS_FILE, ANCHOR_FILE, CHECKPOINT_FILE, INFO_FILE)
    )
    (directory / SUMS_FILE).write_text(sums, encoding="utf-8")
    return hashlib.sha256(sums.encode("utf-8")).hexdigest()


def verify_archive(directory: Path, *, trusted_public_keys: dict[str, str]) -> list[str]:
    """Problems found in an archive directory (empty when it verifies)."""
    problems: list[str] = []
    try:
        sums = (directory / SUMS_FILE).read_text(encoding="utf-8").splitlines()
        for line in sums:
            expected, name = line.split("  ", 1)
            if _sha256_file(directory / name) != expected:
                problems.append(f"{name}: SHA-256 does not match {SUMS_FILE}")
        info = json.loads((directory / INFO_FILE).read_text(encoding="utf-8"))
        checkpoint = json.loads((directory / CHECKPOINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [*problems, f"archive is incomplete or unreadable: {exc}"]
    if problems:
        return problems
    problems.extend(checkpoint_problems(checkpoint, trusted_public_keys))
    expected_seq: int = info["first_seq"]
    previous: str = info["prev_hash"]
    head = ""
    for name in (EVENTS_FILE, ANCHOR_FILE):
        with (directory / name).open(encoding="utf-8") as handle:
            for line in handle:
                event: dict[str, Any] = json.loads(line)
                stored = event.pop("hash")
                if event["seq"] != expected_seq:
                    return [*problems, f"{name}: #{expected_seq} expected, #{event['seq']} found"]
                if event["prev_hash"] != previous:
                    return [*problems, f"{name}: #{event['seq']}: broken link"]
                if hashlib.sha256(canonical_json(event)).hexdigest() != stored:
                    return [*problems, f"{name}: #{event['seq']}: hash mismatch"]
                expected_seq, previous, head = expected_seq + 1, stored, stored
        if name == EVENTS_FILE and expected_seq - 1 != info["last_seq"]:
            problems.append(
                f"{EVENTS_FILE}: ends at #{expected_seq - 1}, {INFO_FILE} says #{info['last_seq']}"
            )
    if expected_seq - 1 != checkpoint["seq"] or head != checkpoint["hash"]:
        problems.append("the chain does not end at the checkpoint's signed head")
    return problems


def checkpoint_problems(checkpoint: dict[str, Any], trusted: dict[str, str]) -> list[str]:
    """What is wrong with an exported checkpoint document: malformed, key id, trust,
    signature (empty: it is a valid checkpoint by a trusted key)."""
    public = str(checkpoint.get("public_key", ""))
    try:
        key_ok = key_id_for(public) == checkpoint["key_id"]
        message = checkpoint_message(
            seq=checkpoint["seq"],
            head_hash=checkpoint["hash"],
            created_at=datetime.fromisoformat(checkpoint["created_at"]),
            key_id=checkpoint["key_id"],
        )
    except (KeyError, ValueError, TypeError):
        return [f"{CHECKPOINT_FILE}: incomplete or malformed"]
    if not key_ok:
        return [f"{CHECKPOINT_FILE}: key id does not match the public key"]
    problems = []
    if trusted.get(checkpoint["key_id"]) != public.lower():
        problems.append(f"{CHECKPOINT_FILE}: signed by a key that is not trusted")
    if not signature_is_valid(public, str(checkpoint.get("signature", "")), message):
        problems.append(f"{CHECKPOINT_FILE}: bad signature")
    return problems
