"""Retention keeps the newest backup of each recent day, week and month, and never the
last good backup's files away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.backups.models import BackupRun, RestoreTest
from audit.backups.retention import RetentionPolicy, backups_to_keep
from audit.backups.services import apply_retention
from tests.factories import audit_events

START = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def daily_runs(days: int) -> list[tuple[int, datetime]]:
    return [(day, START + timedelta(days=day)) for day in range(days)]


def test_daily_weekly_monthly_keep_the_expected_set() -> None:
    runs = daily_runs(120)  # 2026-01-01 .. 2026-04-30, one a day at 03:00
    keep = backups_to_keep(runs, policy=RetentionPolicy(daily=7, weekly=4, monthly=12))
    kept_dates = sorted((START + timedelta(days=pk)).date().isoformat() for pk in keep)
    assert kept_dates == [
        "2026-01-31",  # January's newest
        "2026-02-28",  # February's newest
        "2026-03-31",  # March's newest
        "2026-04-12",  # Sunday of ISO week 15
        "2026-04-19",  # ISO week 16 (weeks 17 and 18: within the last seven days)
        "2026-04-24",  # the last seven days...
        "2026-04-25",
        "2026-04-26",
        "2026-04-27",
        "2026-04-28",
        "2026-04-29",
        "2026-04-30",  # ... the newest of April and of ISO week 18
    ]


def test_two_backups_a_day_keep_the_newer() -> None:
    runs = [(1, START), (2, START + timedelta(hours=12))]
    assert backups_to_keep(runs, policy=RetentionPolicy(daily=1, weekly=0, monthly=0)) == {2}


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=3 * 365 * 24), min_size=1, max_size=60),
    daily=st.integers(min_value=1, max_value=10),
    weekly=st.integers(min_value=0, max_value=6),
    monthly=st.integers(min_value=0, max_value=14),
)
def test_the_newest_is_always_kept_and_never_more_than_the_policy(
    offsets: list[int], daily: int, weekly: int, monthly: int
) -> None:
    runs = [(pk, START + timedelta(hours=h)) for pk, h in enumerate(offsets)]
    keep = backups_to_keep(runs, policy=RetentionPolicy(daily, weekly, monthly))
    newest = max(runs, key=lambda run: (run[1], run[0]))[0]
    assert newest in keep
    assert len(keep) <= daily + weekly + monthly


def _run(name: str, started: datetime, folder: Path, **fields: Any) -> BackupRun:
    path = folder / name
    path.mkdir(parents=True)
    (path / "database.dump.gpg").write_bytes(b"encrypted")
    return BackupRun.objects.create(
        name=name,
        kind=fields.pop("kind", BackupRun.Kind.DATA),
        status=fields.pop("status", BackupRun.Status.SUCCEEDED),
        path=str(path),
        started_at=started,
        **fields,
    )


@pytest.mark.django_db
def test_apply_retention_deletes_files_and_keeps_the_last_tested_backup(
    settings: Any, tmp_path: Path
) -> None:
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 2, 0, 0
    old_tested = _run("a-data", START, tmp_path)
    RestoreTest.objects.create(
        backup=old_tested, backup_name="a-data", started_at=START, passed=True
    )
    middle = _run("b-data", START + timedelta(days=1), tmp_path)
    newer = _run("c-data", START + timedelta(days=2), tmp_path)
    newest = _run("d-data", START + timedelta(days=3), tmp_path)
    failed = _run("e-data", START + timedelta(days=4), tmp_path, status=BackupRun.Status.FAILED)

    deleted = apply_retention()

    assert [run.name for run in deleted] == ["b-data"]
    middle.refresh_from_db()
    assert middle.status == BackupRun.Status.DELETED
    assert not Path(middle.path).exists()
    for kept in (old_tested, newer, newest, failed):
        assert Path(kept.path).exists()
    assert audit_events("backup.deleted", middle)
