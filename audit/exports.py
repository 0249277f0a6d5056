"""Exported copies of the chain, checked again against the live chain.

An auditor's trust in the log rests partly on copies kept where the database is not: the
archives ``archive_audit`` wrote (``audit.archive``) and the checkpoint files
``audit_checkpoint --export`` wrote. The quarterly review (``audit.reviews``) checks every
copy it can reach each time it is generated, and a copy that does not match opens the
audit-tampering incident (``audit.incidents.detectors.check_exported_copies``).

Which copies:

- every archive the log recorded (``audit.archived``: its name, path and the SHA-256 of its
  ``SHA256SUMS``), found at the path recorded or by its name under one of
  ``AUDIT_EXPORT_DIRS``;
- every exported checkpoint file (``*.json`` of format ``tillit-audit-checkpoint/1``)
  directly in one of ``AUDIT_EXPORT_DIRS``.

What "matches" means, for an archive: its ``SHA256SUMS`` is the one recorded when it was
written; it verifies on its own (``audit.archive.verify_archive``: file hashes, every
event's hash and link, the checkpoint's signature by a trusted key); every event in it has
the hash the live chain has at that ``seq`` (streamed side by side, never loaded whole);
its ``checkpoint.json`` is the live checkpoint at that ``seq`` (hash, key and signature).
For a checkpoint file: its signature by a trusted key, and the live chain's hash at its
``seq`` is the one it signs. A recorded archive found nowhere is reported ``missing``
(not checked: never counted as matching, nor as tampering).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from audit.archive import (
    ANCHOR_FILE,
    CHECKPOINT_FILE,
    EVENTS_FILE,
    INFO_FILE,
    SUMS_FILE,
    checkpoint_problems,
    verify_archive,
)
from audit.keys import trusted_public_keys
from audit.models import AuditCheckpoint, AuditEvent
from audit.verify import CHECKPOINT_FILE_FORMAT

ARCHIVED = "audit.archived"
MATCH, MISMATCH, MISSING = "match", "mismatch", "missing"
MAX_COPIES = 500  # archives are monthly; checkpoint files a handful a year
MAX_PROBLEMS = 5


@dataclass(frozen=True)
class CopyCheck:
    """One exported copy and how it compares with the live chain."""

    kind: str  # "archive" or "checkpoint"
    name: str
    status: str  # MATCH, MISMATCH or MISSING
    problems: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "problems": list(self.problems),
        }


def check_exported_copies() -> list[CopyCheck]:
    """Every exported copy within reach, checked against the live chain (reads only)."""
    trusted = trusted_public_keys()
    checks = [_check_recorded_archive(event.details, trusted) for event in _archive_events()]
    checks.extend(_check_checkpoint_file(path, trusted) for path in _checkpoint_files())
    return checks


def _archive_events() -> Iterator[AuditEvent]:
    """``SELECT details FROM audit_auditevent WHERE action = 'audit.archived' ORDER BY seq``
    (the index on ``action``)."""
    return iter(
        AuditEvent.objects.filter(action=ARCHIVED).order_by("seq").only("details")[:MAX_COPIES]
    )


def _export_dirs() -> list[Path]:
    return [Path(directory) for directory in getattr(settings, "AUDIT_EXPORT_DIRS", [])]


def _find_archive(recorded: dict[str, Any]) -> Path | None:
    name = str(recorded.get("directory") or "")
    candidates = [Path(recorded["path"])] if recorded.get("path") else []
    if name and "/" not in name and name not in (".", ".."):
        candidates.extend(directory / name for directory in _export_dirs())
    return next((path for path in candidates if (path / SUMS_FILE).is_file()), None)


def _check_recorded_archive(recorded: dict[str, Any], trusted: dict[str, str]) -> CopyCheck:
    name = str(recorded.get("directory") or recorded.get("path") or "?")
    directory = _find_archive(recorded)
    if directory is None:
        where = recorded.get("path") or "AUDIT_EXPORT_DIRS"
        return CopyCheck("archive", name, MISSING, (f"not found (looked in {where})",))
    problems = archive_problems(directory, recorded, trusted)
    return CopyCheck("archive", name, MISMATCH if problems else MATCH, tuple(problems))


def archive_problems(
    directory: Path, recorded: dict[str, Any], trusted: dict[str, str]
) -> list[str]:
    """How the archive in ``directory`` differs from what was recorded and from the live
    chain (empty: it matches)."""
    sums = (directory / SUMS_FILE).read_bytes()
    if hashlib.sha256(sums).hexdigest() != recorded.get("manifest_sha256"):
        return [f"{SUMS_FILE} is not the one recorded when the archive was written"]
    problems = verify_archive(directory, trusted_public_keys=trusted)
    if problems:
        return problems[:MAX_PROBLEMS]
    info = json.loads((directory / INFO_FILE).read_text(encoding="utf-8"))
    checkpoint = json.loads((directory / CHECKPOINT_FILE).read_text(encoding="utf-8"))
    live = AuditCheckpoint.objects.filter(seq=checkpoint["seq"]).first()
    if live is None or (live.head_hash, live.key_id, live.signature) != (
        checkpoint["hash"],
        checkpoint["key_id"],
        checkpoint["signature"],
    ):
        problems.append(f"{CHECKPOINT_FILE}: not the live checkpoint at #{checkpoint['seq']}")
    problems.extend(_events_against_live(directory, int(info["first_seq"]), checkpoint["seq"]))
    return problems[:MAX_PROBLEMS]


def _copy_hashes(directory: Path) -> Iterator[tuple[int, str]]:
    for name in (EVENTS_FILE, ANCHOR_FILE):
        with (directory / name).open(encoding="utf-8") as handle:
            for line in handle:
                event = json.loads(line)
                yield int(event["seq"]), str(event["hash"])


def _events_against_live(directory: Path, first_seq: int, last_seq: int) -> list[str]:
    """The copy's events beside the live ones, ``seq`` by ``seq``: the first difference.

    Query: ``SELECT seq, hash FROM audit_auditevent WHERE seq BETWEEN first AND last ORDER
    BY seq`` (streamed in chunks)."""
    live = (
        AuditEvent.objects.filter(seq__gte=first_seq, seq__lte=last_seq)
        .order_by("seq")
        .values_list("seq", "hash")
        .iterator(chunk_size=5000)
    )
    copy = _copy_hashes(directory)
    for expected in range(first_seq, last_seq + 1):
        copied, stored = next(copy, (None, None)), next(live, (None, None))
        if copied[0] != expected or stored[0] != expected:
            return [f"#{expected}: the copy and the live chain do not hold the same events"]
        if copied[1] != stored[1]:
            return [f"#{expected}: the copy's hash is not the live chain's"]
    if next(copy, None) is not None:
        return [f"events after #{last_seq} in the copy"]
    return []


def _checkpoint_files() -> Iterator[Path]:
    found = 0
    for directory in _export_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.json")):
            if found >= MAX_COPIES:
                return
            found += 1
            yield path


def _check_checkpoint_file(path: Path, trusted: dict[str, str]) -> CopyCheck:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return CopyCheck("checkpoint", path.name, MISMATCH, (f"unreadable: {exc}",))
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FILE_FORMAT:
        return CopyCheck("checkpoint", path.name, MISMATCH, ("not a checkpoint file",))
    problems = checkpoint_problems(document, trusted)
    if not problems:  # well formed: its seq is an integer
        seq = int(document["seq"])
        live = AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True)
        if list(live) != [document["hash"]]:
            problems.append(f"the live chain has another hash at #{seq}")
    return CopyCheck("checkpoint", path.name, MISMATCH if problems else MATCH, tuple(problems))
