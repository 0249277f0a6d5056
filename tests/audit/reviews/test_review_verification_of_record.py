"""The review states the chain verification of record when one may stand for its period
(decision 76): it passed, started after the period's end, read the period's last event and
is at most 26 hours old. Otherwise the review verifies the whole chain itself, and a broken
chain fails the section and opens the incident."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.db import connection

from audit import SYSTEM, record
from audit.incidents.models import Incident
from audit.models import ChainVerification
from audit.reviews import services
from audit.reviews.document import render_review_html
from audit.verification import verify_and_record
from security.models import User
from tests.audit.governance import tamper_with_event
from tests.factories import audit_events

pytestmark = pytest.mark.django_db

Q3 = (dt.date(2026, 7, 1), dt.date(2026, 9, 30))


def at(moment: dt.datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def oct_(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 10, day, hour, tzinfo=dt.UTC)


@pytest.fixture
def quarter_of_events(officer: User) -> None:
    """A few events in the quarter, in time order along the chain."""
    for day in (3, 17, 29):
        with at(dt.datetime(2026, 8, day, 9, tzinfo=dt.UTC)):
            record("demo.step", actor=SYSTEM, day=day)


def verify(moment: dt.datetime, source: str = "schedule") -> ChainVerification:
    with at(moment):
        return verify_and_record(by=SYSTEM, source=source)[0]


def generate(moment: dt.datetime, officer: User) -> Any:
    with at(moment):
        return services.generate_review(
            period_start=Q3[0], period_end=Q3[1], by=officer, scanners=False
        )


def test_a_passed_verification_after_the_period_is_stated_and_not_repeated(
    quarter_of_events: None, officer: User
) -> None:
    scheduled = verify(oct_(2, 3))

    review = generate(oct_(2, 9), officer)

    stated = review.sections["integrity"]["verification"]
    assert (stated["id"], stated["source"], stated["of_record"]) == (scheduled.pk, "schedule", True)
    assert stated["ok"] and review.sections["integrity"]["ok"]
    assert ChainVerification.objects.count() == 1  # the review did not verify again
    page = render_review_html(review, review.sections)
    assert f"Verification of record #{scheduled.pk}, finished 2026-10-02T03:00 UTC" in page
    assert "Scheduled check" in page


@pytest.mark.parametrize(
    ("verified_at", "why"),
    [
        (oct_(1, 6), "finished 27 hours before the review: too old"),
        (dt.datetime(2026, 9, 30, 23, tzinfo=dt.UTC), "ran before the period's end"),
    ],
)
def test_a_verification_that_cannot_stand_for_the_period_is_not_stated(
    quarter_of_events: None, officer: User, verified_at: dt.datetime, why: str
) -> None:
    earlier = verify(verified_at)

    review = generate(oct_(2, 9), officer)

    stated = review.sections["integrity"]["verification"]
    fresh = ChainVerification.objects.exclude(pk=earlier.pk).get()
    assert (stated["id"], stated["of_record"], fresh.source) == (fresh.pk, False, "review"), why
    assert stated["ok"]
    assert "Verified for this review: verification #" in render_review_html(review, review.sections)


def test_a_verification_that_did_not_read_the_periods_last_event_is_not_stated(
    quarter_of_events: None, officer: User
) -> None:
    """An event appended in the period but committed after the verification started was
    not in what it read (simulated: the row says it read one event less)."""
    scheduled = verify(oct_(2, 3))
    last_in_period = audit_events("demo.step")[-1].seq
    ChainVerification.objects.filter(pk=scheduled.pk).update(last_seq=last_in_period - 1)

    review = generate(oct_(2, 9), officer)

    assert review.sections["integrity"]["verification"]["of_record"] is False
    assert ChainVerification.objects.filter(source="review").count() == 1


def test_after_a_failed_verification_the_review_verifies_again_fails_and_opens_an_incident(
    quarter_of_events: None, officer: User
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the audit table's trigger is PostgreSQL's")
    passed = verify(oct_(1, 6))
    victim = audit_events("demo.step")[1]
    tamper_with_event(victim.seq)
    failed = verify(oct_(2, 3), source="command")
    assert failed.status == "failed"

    review = generate(oct_(2, 9), officer)

    integrity = review.sections["integrity"]
    fresh = ChainVerification.objects.exclude(pk__in=[passed.pk, failed.pk]).get()
    assert integrity["verification"]["id"] == fresh.pk and fresh.source == "review"
    assert not integrity["ok"] and f"#{victim.seq}" in integrity["verification"]["first_problem"]
    assert Incident.objects.get(detector_key="audit_chain").kind == "audit_tampering"
