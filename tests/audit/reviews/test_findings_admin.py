"""Findings in the admin: an officer moves one (through the service, audited); an auditor
reads them and changes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from audit import SYSTEM
from audit.reviews import services
from audit.reviews.models import ReviewFinding
from security.models import User
from tests.factories import audit_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def finding(officer: User) -> ReviewFinding:
    today = dt.date.today()
    review = services.generate_review(
        period_start=today - dt.timedelta(days=7), period_end=today, by=SYSTEM, scanners=False
    )
    return services.raise_finding(
        review,
        title="Rotate the proxy's TLS key",
        owner=officer,
        due_date=today + dt.timedelta(days=30),
        by=officer,
    )


def test_an_officer_closes_a_finding_from_the_admin(
    officer: User, finding: ReviewFinding, admin_client_for: Callable[[User], Client]
) -> None:
    url = reverse("admin:audit_reviewfinding_change", args=[finding.pk])
    response = admin_client_for(officer).post(url, {"new_status": "closed"})
    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.status == "closed" and finding.closed_at is not None
    (event,) = audit_events("review.finding_status_changed", finding)
    assert (event.details["previous"], event.actor_label) == ("open", "sofia")


def test_the_auditor_reads_findings_but_cannot_move_them(
    auditor: User, finding: ReviewFinding, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(auditor)
    url = reverse("admin:audit_reviewfinding_change", args=[finding.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"new_status": "closed"}).status_code == 403
    finding.refresh_from_db()
    assert finding.status == "open"
