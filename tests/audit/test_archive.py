"""archive_audit: a closed period, exported with its checkpoint, verified, recorded."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import SYSTEM, record
from audit.archive import verify_archive
from audit.keys import trusted_public_keys
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import create_checkpoint

pytestmark = pytest.mark.django_db

VERIFY_SCRIPT = Path(settings.BASE_DIR) / "docs" / "verify_export.py"


def _record_at(moment: datetime, action: str, **details: Any) -> AuditEvent:
    with time_machine.travel(moment, tick=False):
        return record(action, actor=SYSTEM, **details)


def _history() -> tuple[list[AuditEvent], list[AuditEvent]]:
    """Two events in September 2026, three in October (one non-ASCII), one in November."""
    september = [
        _record_at(datetime(2026, 9, day, 12, tzinfo=UTC), "demo.september", day=day)
        for day in (3, 30)
    ]
    october = [
        _record_at(datetime(2026, 10, 1, 0, tzinfo=UTC), "demo.october", note="first"),
        _record_at(datetime(2026, 10, 15, 9, tzinfo=UTC), "demo.october", note="Åsa “quoted”"),
        _record_at(datetime(2026, 10, 31, 23, 59, tzinfo=UTC), "demo.october", note="last"),
    ]
    _record_at(datetime(2026, 11, 2, 8, tzinfo=UTC), "demo.november")
    return september, october


def _archive(tmp_path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("archive_audit", *args, "--out", str(tmp_path), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _auditor_script(directory: Path, *key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- our own script, fixed arguments
        [sys.executable, str(VERIFY_SCRIPT), str(directory), *key],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_month_is_exported_verified_and_recorded(tmp_path: Path) -> None:
    _, october = _history()
    before = AuditEvent.objects.count()

    summary = _archive(tmp_path, "--period", "2026-10")

    folder = tmp_path / "audit-2026-10"
    lines = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert [line["seq"] for line in lines] == [e.seq for e in october]
    assert lines[1]["details"] == {"note": "Åsa “quoted”"}
    assert lines[0]["created_at"] == "2026-10-01T00:00:00.000000+00:00"
    assert f"#{october[0].seq}…#{october[-1].seq}" in summary
    checkpoint = AuditCheckpoint.objects.get()
    assert json.loads((folder / "checkpoint.json").read_text())["seq"] == checkpoint.seq
    assert verify_archive(folder, trusted_public_keys=trusted_public_keys()) == []
    archived = AuditEvent.objects.get(action="audit.archived")
    assert archived.details["first_seq"] == october[0].seq
    assert archived.details["last_seq"] == october[-1].seq
    assert archived.details["checkpoint_seq"] == checkpoint.seq
    # Nothing deleted: the checkpoint's event and the archive's event were added.
    assert AuditEvent.objects.count() == before + 2


def test_the_documented_auditor_script_verifies_an_archive(tmp_path: Path) -> None:
    _history()
    _archive(tmp_path, "--period", "2026-10")
    folder = tmp_path / "audit-2026-10"
    public_key = AuditCheckpoint.objects.get().public_key

    result = _auditor_script(folder, public_key)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK")
    assert _auditor_script(folder, "ab" * 32).returncode == 1


def test_the_auditor_script_names_a_tampered_event(tmp_path: Path) -> None:
    _, october = _history()
    _archive(tmp_path, "--period", "2026-10")
    folder = tmp_path / "audit-2026-10"
    events = folder / "events.jsonl"
    tampered = events.read_text().replace("first", "forged")
    events.write_text(tampered)
    # A careful forger also fixes the manifest; the chain still gives them away.
    sums = (folder / "SHA256SUMS").read_text().splitlines()

    digest = hashlib.sha256(tampered.encode()).hexdigest()
    sums[0] = f"{digest}  events.jsonl"
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")

    result = _auditor_script(folder)

    assert result.returncode == 1
    assert f"#{october[0].seq}: hash mismatch" in result.stdout
    problems = verify_archive(folder, trusted_public_keys=trusted_public_keys())
    assert problems == [f"events.jsonl: #{october[0].seq}: hash mismatch"]


def test_the_docs_contain_the_auditor_script_verbatim() -> None:
    doc = (Path(settings.BASE_DIR) / "docs" / "audit.md").read_text(encoding="utf-8")

    assert VERIFY_SCRIPT.read_text(encoding="utf-8") in doc


def test_an_existing_checkpoint_that_covers_the_period_is_reused(tmp_path: Path) -> None:
    _history()
    with time_machine.travel(datetime(2026, 11, 2, 9, tzinfo=UTC), tick=False):
        hourly = create_checkpoint(by=SYSTEM)
    assert hourly is not None
    _record_at(datetime(2026, 11, 3, tzinfo=UTC), "demo.later")

    _archive(tmp_path, "--period", "2026-10")

    folder = tmp_path / "audit-2026-10"
    assert json.loads((folder / "checkpoint.json").read_text())["seq"] == hourly.seq
    anchor = [json.loads(line)["seq"] for line in (folder / "anchor.jsonl").read_text().split()]
    assert anchor == [hourly.seq]  # the November event up to the signed head
    assert AuditCheckpoint.objects.count() == 1


def test_before_a_date_exports_everything_earlier(tmp_path: Path) -> None:
    september, _ = _history()

    _archive(tmp_path, "--before", "2026-10-01")

    lines = (tmp_path / "audit-before-2026-10-01" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [e.seq for e in september]


def test_a_period_that_is_not_closed_is_refused(tmp_path: Path) -> None:
    record("demo.now", actor=SYSTEM)
    this_month = datetime.now(tz=UTC).strftime("%Y-%m")

    with pytest.raises(CommandError, match="not yet closed"):
        _archive(tmp_path, "--period", this_month)

    assert list(tmp_path.iterdir()) == []
    assert not AuditEvent.objects.filter(action="audit.archived").exists()


def test_an_existing_archive_is_never_overwritten(tmp_path: Path) -> None:
    _history()
    (tmp_path / "audit-2026-10").mkdir()

    with pytest.raises(CommandError, match="already exists"):
        _archive(tmp_path, "--period", "2026-10")

    assert not AuditEvent.objects.filter(action="audit.archived").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--period", "2026-13"), "--period"),
        (("--period", "2026-08"), "no events"),
        (("--before", "yesterday"), "--before"),
    ],
)
def test_bad_archive_requests_are_refused_by_name(
    tmp_path: Path, args: tuple[str, str], message: str
) -> None:
    _history()

    with pytest.raises(CommandError, match=message):
        _archive(tmp_path, *args)

    assert list(tmp_path.iterdir()) == []
