"""The review's audit-integrity section says whether the exported copies of the chain (the
archives, the exported checkpoint files) match the live chain: a tampered copy fails the
section and opens the audit-tampering incident; a copy not found is listed, not hidden."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from audit import SYSTEM, record
from audit.exports import check_exported_copies
from audit.incidents.models import Incident
from audit.reviews import services
from audit.reviews.document import render_review_html
from audit.reviews.models import SecurityReview
from security.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def exports(tmp_path: Path, settings: Any) -> Path:
    """October 2026 archived and the head's checkpoint exported, both in AUDIT_EXPORT_DIRS."""
    for day in (2, 15, 30):
        with time_machine.travel(dt.datetime(2026, 10, day, 12, tzinfo=dt.UTC), tick=False):
            record("demo.october", actor=SYSTEM, day=day)
    record("demo.today", actor=SYSTEM)
    out = io.StringIO()
    call_command("archive_audit", "--period", "2026-10", "--out", str(tmp_path), stdout=out)
    call_command("audit_checkpoint", "--export", str(tmp_path / "checkpoint.json"), stdout=out)
    settings.AUDIT_EXPORT_DIRS = [tmp_path]
    return tmp_path


def _review(officer: User) -> SecurityReview:
    today = dt.date.today()
    return services.generate_review(
        period_start=today - dt.timedelta(days=7), period_end=today, by=officer, scanners=False
    )


def _html(review: SecurityReview) -> str:
    return render_review_html(review, review.sections)


def _statuses(review: SecurityReview) -> dict[str, str]:
    return {c["name"]: c["status"] for c in review.sections["integrity"]["copies"]}


def _rewrite(path: Path, change: Any) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(change(lines)) + "\n", encoding="utf-8")


def test_untouched_copies_match(exports: Path, officer: User) -> None:
    review = _review(officer)

    integrity = review.sections["integrity"]
    assert _statuses(review) == {"audit-2026-10": "match", "checkpoint.json": "match"}
    assert integrity["ok"] and integrity["copies_matching"] == 2
    assert not Incident.objects.filter(detector_key="audit_exports").exists()
    assert "Exported copies checked against the live chain: 2 match" in _html(review)


def test_a_tampered_archive_fails_the_section_and_opens_an_incident(
    exports: Path, officer: User
) -> None:
    events = exports / "audit-2026-10" / "events.jsonl"

    def forge(lines: list[str]) -> list[str]:
        first = json.loads(lines[0])
        first["details"] = {"day": 3}  # what an intruder would change
        return [json.dumps(first), *lines[1:]]

    _rewrite(events, forge)

    review = _review(officer)

    integrity = review.sections["integrity"]
    [archive] = [c for c in integrity["copies"] if c["kind"] == "archive"]
    assert archive["status"] == "mismatch" and archive["problems"]
    assert not integrity["ok"] and integrity["copies_mismatched"] == 1
    pci = {item["requirement"]: item["status"] for item in review.sections["pci"]}
    assert pci["10.3.4"] == "not met"
    incident = Incident.objects.get(detector_key="audit_exports")
    assert (incident.kind, incident.severity) == ("audit_tampering", "critical")
    assert "audit-2026-10" in incident.summary
    assert "do NOT match the live chain" in _html(review) or "does NOT match" in _html(review)


def test_a_consistently_rewritten_archive_is_caught_by_the_recorded_manifest(
    exports: Path,
) -> None:
    """A forger who fixes SHA256SUMS too still differs from the hash the log recorded."""
    folder = exports / "audit-2026-10"
    _rewrite(folder / "archive.json", lambda lines: [*lines, ""])
    sums = (folder / "SHA256SUMS").read_text().splitlines()
    import hashlib

    digest = hashlib.sha256((folder / "archive.json").read_bytes()).hexdigest()
    fixed = [f"{digest}  archive.json" if s.endswith("archive.json") else s for s in sums]
    (folder / "SHA256SUMS").write_text("\n".join(fixed) + "\n")

    [archive] = [c for c in check_exported_copies() if c.kind == "archive"]

    assert archive.status == "mismatch"
    assert "not the one recorded" in archive.problems[0]


def test_a_tampered_exported_checkpoint_does_not_match(exports: Path) -> None:
    path = exports / "checkpoint.json"
    document = json.loads(path.read_text())
    document["hash"] = "0" * 64
    path.write_text(json.dumps(document))

    [checkpoint] = [c for c in check_exported_copies() if c.kind == "checkpoint"]

    assert checkpoint.status == "mismatch" and "bad signature" in " ".join(checkpoint.problems)


def test_an_archive_not_found_is_listed_as_missing_not_as_matching(
    exports: Path, officer: User
) -> None:
    shutil.rmtree(exports / "audit-2026-10")

    review = _review(officer)

    integrity = review.sections["integrity"]
    assert _statuses(review)["audit-2026-10"] == "missing"
    assert integrity["copies_missing"] == 1 and integrity["copies_matching"] == 1
    assert integrity["ok"]  # nothing shows tampering; the missing copy is named
    assert not Incident.objects.filter(detector_key="audit_exports").exists()
