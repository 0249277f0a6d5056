"""One source for "the last chain verification": every path that verifies the chain (the
admin's job, ``manage.py verify_audit``, the scheduled detector, a review being generated)
writes a ``ChainVerification`` row through ``audit.verification.verify_and_record``, and
every reader (the dashboards, the review, the shared evidence) reads it through
``audit.selectors.last_chain_verification``."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit import SYSTEM, evidence, record
from audit.incidents.tasks import check_audit_chain_job
from audit.models import ChainVerification
from audit.reviews import services
from audit.selectors import chain_health, last_chain_verification
from audit.tasks import verify_chain_job
from audit.verification import request_chain_verification, verify_and_record
from security.models import User
from tests.factories import audit_events

pytestmark = pytest.mark.django_db


def _via_admin(officer: User) -> None:
    pending, _queued = request_chain_verification(by=officer)
    verify_chain_job(pending.pk)


def _via_command(officer: User) -> None:
    call_command("verify_audit", stdout=io.StringIO(), stderr=io.StringIO())


def _via_schedule(officer: User) -> None:
    assert check_audit_chain_job()


def _via_review(officer: User) -> None:
    today = dt.date.today()
    services.generate_review(
        period_start=today - dt.timedelta(days=7), period_end=today, by=officer, scanners=False
    )


PATHS: dict[str, Callable[[User], None]] = {
    "admin": _via_admin,
    "command": _via_command,
    "schedule": _via_schedule,
    "review": _via_review,
}


@pytest.mark.parametrize("source", list(PATHS))
def test_every_verification_path_writes_the_row_every_reader_reads(
    source: str, officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    for n in range(3):
        record("demo.step", actor=SYSTEM, n=n)
    older = verify_and_record(by=SYSTEM, source="command")[0]  # a verification before

    PATHS[source](officer)

    latest = ChainVerification.objects.exclude(pk=older.pk).get()
    assert (latest.source, latest.status) == (source, "passed")
    assert latest.events_checked == latest.last_seq and latest.finished_at is not None
    # ... kept in the chain too, naming the row.
    [event] = [e for e in audit_events("audit.chain_verified") if e.object_id == str(latest.pk)]
    assert event.details["source"] == source
    # Every reader answers with that row.
    assert last_chain_verification() == latest
    assert chain_health().last_verification == latest
    shared = evidence.latest_chain_verification()
    assert shared is not None and (shared["id"], shared["source"]) == (latest.pk, source)
    home = admin_client_for(officer).get(reverse("admin:index")).content.decode()
    assert latest.finished_at is not None
    assert "Chain intact" in home


def test_the_review_counts_the_verifications_of_its_period_from_the_rows(officer: User) -> None:
    record("demo.step", actor=SYSTEM)
    verify_and_record(by=SYSTEM, source="command")
    today = dt.date.today()

    review = services.generate_review(
        period_start=today - dt.timedelta(days=7), period_end=today, by=officer, scanners=False
    )

    integrity = review.sections["integrity"]
    assert integrity["recorded_runs"] == ChainVerification.objects.count() == 2
    assert integrity["recorded_failures"] == 0


def test_last_verification_before_a_moment(officer: User) -> None:
    first = verify_and_record(by=SYSTEM, source="command")[0]
    second = verify_and_record(by=SYSTEM, source="schedule")[0]
    assert first.finished_at is not None and second.finished_at is not None

    assert last_chain_verification() == second
    assert last_chain_verification(before=second.finished_at) == first
    assert last_chain_verification(before=first.finished_at - dt.timedelta(seconds=1)) is None


@pytest.mark.django_db(transaction=True)
def test_progress_is_written_where_the_admin_page_sees_it_while_the_chain_streams() -> None:
    """The chain streams on Django's connection (busy until the end): the progress goes
    through a connection of its own, committed, so another session reads it meanwhile."""
    if connection.vendor != "postgresql":
        pytest.skip("streaming is PostgreSQL's")
    for n in range(5):
        record("demo.step", actor=SYSTEM, n=n)
    pending, _ = request_chain_verification(by=SYSTEM)
    seen: list[int] = []
    db = settings.DATABASES["default"]

    def watch(count: int) -> None:
        with psycopg.connect(
            dbname=connection.settings_dict["NAME"],
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
        ) as other:
            row = other.execute(
                "SELECT events_checked FROM audit_chainverification WHERE id = %s", [pending.pk]
            ).fetchone()
            assert row is not None
            seen.append(row[0])

    verification, result = verify_and_record(
        by=SYSTEM, source="admin", pending=pending, progress=watch, progress_every=2
    )

    assert result.ok and verification.status == "passed"
    assert seen == [2, 4, 6]  # five events and the request's own


def test_no_reader_takes_the_last_verification_from_anywhere_else() -> None:
    """Only audit.verification writes ChainVerification rows and audit.chain_verified
    events; nothing else reads those events (the rows are the one source)."""
    root = Path(settings.BASE_DIR)
    offenders = []
    for path in root.glob("*/**/*.py"):
        relative = path.relative_to(root).as_posix()
        if relative.split("/")[0] in {"tests", "bench", ".venv", "node_modules", "var"}:
            continue
        if relative in {"audit/verification.py"} or "/migrations/" in relative:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"[\"']audit\.chain_verified[\"']", text) or re.search(
            r"ChainVerification\.objects\.(create|update|bulk_create|get_or_create)", text
        ):
            offenders.append(relative)
        if re.search(r"ChainVerification\.objects\.filter\([^)]*\)\.update", text):
            offenders.append(relative)
    assert offenders == []
