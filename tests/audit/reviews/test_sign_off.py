"""Signing a review off: a security officer with a fresh second factor; the signed review
is immutable (service and database trigger) and its hash is in the audit log; findings
are carried into the next review until closed; every other role is refused."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from audit import SYSTEM
from audit.reviews import services
from audit.reviews.models import ReviewFinding, SecurityReview
from audit.reviews.services import ReviewRefused
from security.models import User
from tests.factories import audit_events

pytestmark = pytest.mark.django_db

Q2 = (dt.date(2026, 4, 1), dt.date(2026, 6, 30))
Q3 = (dt.date(2026, 7, 1), dt.date(2026, 9, 30))


def at(moment: dt.datetime) -> Any:
    return time_machine.travel(moment, tick=False)


@pytest.fixture(autouse=True)
def _in_order() -> Any:
    with at(dt.datetime(2026, 7, 2, 8, tzinfo=dt.UTC)):
        yield


def generate(period: tuple[dt.date, dt.date], by: Any = SYSTEM) -> SecurityReview:
    return services.generate_review(
        period_start=period[0], period_end=period[1], by=by, scanners=False
    )


def test_sign_off_needs_a_fresh_second_factor(
    officer: User, stepped_up: Callable[[User], Any]
) -> None:
    review = generate(Q2)
    stale = stepped_up(officer)
    stale.session.clear()
    with pytest.raises(ReviewRefused) as refused:
        services.sign_off_review(review, note="", by=officer, request=stale)
    assert refused.value.field == "step_up"
    assert SecurityReview.objects.get(pk=review.pk).status == "draft"


def test_a_signed_review_is_final_and_its_hash_is_in_the_audit_log(
    officer: User, stepped_up: Callable[[User], Any]
) -> None:
    review = generate(Q2)
    signed = services.sign_off_review(
        review, note="Reviewed with the CISO.", by=officer, request=stepped_up(officer)
    )
    assert (signed.status, signed.signed_by) == ("signed", officer)
    (event,) = audit_events("review.signed_off", signed)
    assert event.details["pdf_sha256"] == hashlib.sha256(bytes(signed.pdf)).hexdigest()
    assert event.actor_label == "sofia"

    with pytest.raises(ReviewRefused) as again:
        services.sign_off_review(signed, note="", by=officer, request=stepped_up(officer))
    assert again.value.field == "review"
    with pytest.raises(ReviewRefused) as regenerate:
        generate(Q2, by=officer)
    assert regenerate.value.field == "period_end"
    assert SecurityReview.objects.get(pk=review.pk).pdf_sha256 == signed.pdf_sha256


@pytest.mark.postgres_only
def test_the_database_refuses_to_change_or_delete_a_signed_review(
    officer: User, stepped_up: Callable[[User], Any]
) -> None:
    review = services.sign_off_review(
        generate(Q2), note="", by=officer, request=stepped_up(officer)
    )
    for statement in (
        "UPDATE audit_securityreview SET sign_off_note = 'changed' WHERE id = %s",
        "DELETE FROM audit_securityreview WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="signed off"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [review.pk])
    assert SecurityReview.objects.get(pk=review.pk).sign_off_note == ""


def test_open_findings_are_carried_into_the_next_review_until_closed(
    officer: User, stepped_up: Callable[[User], Any]
) -> None:
    q2 = generate(Q2)
    finding = services.raise_finding(
        q2,
        title="Doris is dormant but enabled",
        owner=officer,
        due_date=dt.date(2026, 8, 1),
        by=officer,
    )
    closed = services.raise_finding(
        q2, title="Old TLS on the proxy", owner=officer, due_date=dt.date(2026, 7, 15), by=officer
    )
    signed = services.sign_off_review(q2, note="", by=officer, request=stepped_up(officer))
    assert {f["title"] for f in signed.sections["findings"]} == {finding.title, closed.title}
    with at(dt.datetime(2026, 7, 20, tzinfo=dt.UTC)):
        services.set_finding_status(closed, status="closed", by=officer)
    with at(dt.datetime(2026, 10, 2, tzinfo=dt.UTC)):
        q3 = generate(Q3)
    carried = q3.sections["findings"]
    assert [f["title"] for f in carried] == [finding.title]
    assert carried[0]["carried_over"] and carried[0]["raised_in"] == str(q2)
    assert audit_events("review.finding_status_changed", closed)[0].details["status"] == "closed"


def test_a_finding_needs_an_active_staff_owner_and_a_title(officer: User, alice: User) -> None:
    review = generate(Q2)
    with pytest.raises(ReviewRefused) as owner:
        services.raise_finding(
            review, title="x", owner=alice, due_date=dt.date(2026, 8, 1), by=officer
        )
    assert owner.value.field == "owner"
    with pytest.raises(ReviewRefused) as title:
        services.raise_finding(
            review, title=" ", owner=officer, due_date=dt.date(2026, 8, 1), by=officer
        )
    assert title.value.field == "title"
    assert not ReviewFinding.objects.exists()


def test_the_officer_generates_reads_and_signs_off_in_the_admin(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(officer)
    response = client.post(
        reverse("admin:audit_securityreview_generate"),
        {"period_start": "2026-04-01", "period_end": "2026-06-30"},
    )
    assert response.status_code == 302
    review = SecurityReview.objects.get()
    page = client.get(reverse("admin:audit_securityreview_change", args=[review.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and "PCI DSS" in body and "data:image/svg+xml" in body
    pdf = client.get(reverse("admin:audit_securityreview_pdf", args=[review.pk]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    signed = client.post(
        reverse("admin:audit_securityreview_sign_off", args=[review.pk]),
        {"note": "ok", "confirm": "on"},
    )
    assert signed.status_code == 302
    assert SecurityReview.objects.get(pk=review.pk).status == "signed"


def test_the_auditor_reads_reviews_but_cannot_generate_or_sign(
    auditor: User, admin_client_for: Callable[[User], Client]
) -> None:
    review = generate(Q2)
    client = admin_client_for(auditor)
    assert (
        client.get(reverse("admin:audit_securityreview_change", args=[review.pk])).status_code
        == 200
    )
    assert (
        client.get(reverse("admin:audit_securityreview_pdf", args=[review.pk])).status_code == 200
    )
    for url in (
        reverse("admin:audit_securityreview_generate"),
        reverse("admin:audit_securityreview_sign_off", args=[review.pk]),
        reverse("admin:audit_securityreview_finding", args=[review.pk]),
    ):
        assert (
            client.post(
                url, {"confirm": "on", "period_start": "2026-04-01", "period_end": "2026-06-30"}
            ).status_code
            == 403
        )
    assert SecurityReview.objects.get(pk=review.pk).status == "draft"


def test_every_other_role_is_refused_every_review_page(
    other_roles: list[User], admin_client_for: Callable[[User], Client]
) -> None:
    review = generate(Q2)
    urls = [
        reverse("admin:audit_securityreview_changelist"),
        reverse("admin:audit_securityreview_change", args=[review.pk]),
        reverse("admin:audit_securityreview_pdf", args=[review.pk]),
        reverse("admin:audit_securityreview_generate"),
        reverse("admin:audit_securityreview_sign_off", args=[review.pk]),
        reverse("admin:audit_reviewfinding_changelist"),
    ]
    for user in other_roles:
        if user.groups.filter(name="Auditor").exists():
            continue
        client = admin_client_for(user)
        for url in urls:
            assert client.get(url).status_code == 403, (user, url)
    assert SecurityReview.objects.get(pk=review.pk).status == "draft"
