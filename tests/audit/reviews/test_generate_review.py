"""A generated review of a seeded quarter holds the right numbers (compared with direct
queries), draws its charts, renders a signed PDF, and is refused by field on bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client, RequestFactory
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import SYSTEM
from audit.incidents import services as incidents
from audit.incidents.models import Incident
from audit.models import AuditEvent
from audit.reviews import services
from audit.reviews.models import SecurityReview
from audit.reviews.services import ReviewRefused
from billing.models import Invoice
from payments import services as payments
from payments.models import Payment, PaymentMethod
from security.models import User
from security.selectors import dormant_staff
from security.services import record_lockout
from tests.audit.governance import PASSPHRASE, staff_member, tamper_with_event
from tests.factories import audit_events
from tests.payments.fixtures import APPROVED, DECLINED, key, sek

pytestmark = pytest.mark.django_db

Q3 = (dt.date(2026, 7, 1), dt.date(2026, 9, 30))
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _before_the_quarter() -> Any:
    """Every event of these tests happens in order from June on: the chain's time never goes
    backwards along it, so nothing may be recorded "now" (December) before the quarter."""
    with time_machine.travel(dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC), tick=False):
        yield


def at(day: int, month: int = 8, hour: int = 10) -> Any:
    return time_machine.travel(dt.datetime(2026, month, day, hour, tzinfo=dt.UTC), tick=False)


def login(username: str, password: str = PASSWORD, ip: str = "198.51.100.7") -> int:
    return (
        Client(REMOTE_ADDR=ip)
        .post("/account/login/", {"username": username, "password": password})
        .status_code
    )


@pytest.fixture
def seeded_quarter(
    officer: User,
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
) -> dict[str, Any]:
    """A quarter of activity: staff, logins and failures, a lockout, payments, an incident."""
    with at(1, month=6):
        dormant = staff_member("doris", "Accountant")
    User.objects.filter(pk=dormant.pk).update(last_login=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    with at(3):
        clerk = staff_member("carl", "Billing clerk")
        assert login("alice") == 302  # a staff sign-in completes only with its second factor
        assert login("carl", "wrong-password-1", ip="203.0.113.9") == 200
        assert login("carl", "wrong-password-2", ip="203.0.113.9") == 200
        assert login("alice", "wrong-password-3", ip="192.0.2.1") == 200
    with at(14):
        User.objects.create_superuser(
            username="root", email="root@example.test", password="Glass4break9now"
        )
        Client().post("/account/login/", {"username": "root", "password": "Glass4break9now"})
    with at(15):
        record_lockout(username="mallory", request=RequestFactory().post("/account/login/"))
    with at(20):
        good = saved_card(APPROVED)
        paid = payments.pay_invoice(
            thousand_sek_invoice,
            amount=sek(400),
            payment_method=good,
            idempotency_key=key(1),
            by=alice,
        )
        declined = payments.pay_invoice(
            thousand_sek_invoice,
            amount=sek(100),
            payment_method=saved_card(DECLINED),
            idempotency_key=key(2),
            by=alice,
        )
    with at(22):
        from audit.backups.models import BackupRun, RestoreTest

        for n, status in enumerate(("succeeded", "succeeded", "failed")):
            BackupRun.objects.create(
                name=f"q3-{n}",
                kind="data",
                status=status,
                path=f"/b/q3-{n}",
                started_at=timezone.now(),
            )
        RestoreTest.objects.create(backup_name="q3-0", started_at=timezone.now(), passed=True)
    with at(25):
        incident, _ = incidents.open_incident(
            title="Phishing", kind="account_takeover", severity="high", by=officer
        )
    with at(25, hour=14):
        incidents.change_incident_status(incident, to="triaged", note="real", by=officer)
        incidents.change_incident_status(incident, to="contained", note="reset", by=officer)
    with at(1, month=10):  # after the quarter: never counted in it
        assert login("alice") == 302
    assert (paid.status, declined.status) == ("succeeded", "failed")
    return {"clerk": clerk, "dormant": dormant, "incident": incident}


def generate(by: Any = SYSTEM) -> SecurityReview:
    with at(2, month=10, hour=6):
        return services.generate_review(period_start=Q3[0], period_end=Q3[1], by=by, scanners=False)


def in_q3(action: str) -> int:
    return AuditEvent.objects.filter(
        action=action,
        created_at__gte=dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
        created_at__lt=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    ).count()


def test_the_review_of_a_seeded_quarter_holds_the_right_numbers(
    seeded_quarter: dict[str, Any], officer: User
) -> None:
    review = generate(officer)
    s = review.sections

    access = s["access"]
    accounts = {a["username"]: a for a in access["accounts"]}
    staff = set(User.objects.filter(is_staff=True).values_list("username", flat=True))
    assert set(accounts) == staff >= {"sofia", "carl", "doris", "clerk"}
    assert accounts["doris"]["dormant"] and accounts["doris"]["active"]
    assert not accounts["carl"]["second_factor"] and accounts["carl"]["roles"] == ["Billing clerk"]
    with_factor = set(
        TOTPDevice.objects.filter(confirmed=True).values_list("user__username", flat=True)
    )
    quarter_end = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    dormant = {u.username for u in dormant_staff(now=quarter_end)}
    assert "doris" in dormant and "carl" not in dormant  # carl joined in August
    assert access["dormant_enabled"] == len(dormant)
    (breakglass,) = access["superuser_signins"]
    assert breakglass["actor"] == "root" and breakglass["at"].startswith("2026-08-14")
    assert access["without_second_factor"] == len(staff - with_factor) == len(staff)

    auth = s["authentication"]
    assert auth["logins"] == in_q3("auth.login") == 2  # alice and the break-glass root
    assert auth["failures"] == in_q3("auth.login_failed") == 3
    assert auth["lockouts"] == in_q3("security.lockout") == 1
    assert auth["top_failure_sources"][0] == {"ip": "203.0.113.9", "failures": 2}
    assert sum(w["logins"] for w in auth["weeks"]) == 2 and len(auth["weeks"]) == 14

    pay = s["payments"]
    assert pay["payments"] == Payment.objects.count() == 2
    assert (pay["succeeded"], pay["declined"], pay["blocked"]) == (1, 1, 0)
    assert pay["volumes"] == {"SEK": 40_000}

    (listed,) = s["incidents"]["incidents"]
    assert listed["id"] == seeded_quarter["incident"].pk and listed["hours_to_contain"] == 4.0
    assert s["integrity"]["ok"] and s["integrity"]["verification"]["ok"]
    assert (
        s["integrity"]["events_in_period"]
        == AuditEvent.objects.filter(
            created_at__lt=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
            created_at__gte=dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
        ).count()
    )
    assert s["backups"]["counts"] == {
        "data": {"succeeded": 2, "failed": 1},
        "restore_test": {"passed": 1},
    }
    assert s["backups"]["last_restore_test"]["outcome"] == "passed"
    assert s["technical"]["bandit"]["status"] == "not checked"
    pci = {item["requirement"]: item["status"] for item in s["pci"]}
    assert pci["8.4.2"] == "not met" and pci["8.2.6"] == "not met" and pci["10.3.4"] == "met"
    assert pci["6.3.3"] == "not checked"

    assert review.pdf_sha256 == hashlib.sha256(bytes(review.pdf)).hexdigest()
    (event,) = audit_events("review.generated", review)
    assert event.details["pdf_sha256"] == review.pdf_sha256


def test_the_pdf_is_signed_by_the_company_and_shows_the_sections(
    seeded_quarter: dict[str, Any],
) -> None:
    from billing.documents.keys import load_identity
    from billing.documents.verify import inspect_pdf

    review = generate()
    pdf = bytes(review.pdf)
    assert pdf.startswith(b"%PDF")
    inspection = inspect_pdf(pdf, known_certificates_pem=[load_identity().certificate_pem])
    assert inspection.signed and inspection.intact
    assert PASSPHRASE.encode() not in pdf


def test_the_pdf_prints_every_account_and_every_role_change_on_a_row_of_its_own(
    officer: User,
) -> None:
    import io
    import re

    from pypdf import PdfReader

    from audit import record

    with at(1, month=6):
        staff_member("doris", "Accountant")
    with at(10):
        clerk = staff_member("carl", "Billing clerk")
        for n in range(3):
            record(
                "security.roles_changed",
                actor=officer,
                obj=clerk,
                before=[],
                after=["Billing clerk"] if n % 2 else ["Accountant"],
            )
    review = generate()
    reader = PdfReader(io.BytesIO(bytes(review.pdf)))
    text = "\n".join(page.extract_text() for page in reader.pages)

    access = review.sections["access"]
    assert {a["username"] for a in access["accounts"]} >= {"sofia", "doris", "carl"}
    assert [a["dormant"] for a in access["accounts"] if a["username"] == "doris"] == [True]
    assert len(access["role_change_list"]) == 3
    for a in access["accounts"]:
        state = "disabled" if not a["active"] else "dormant" if a["dormant"] else "active"
        row = rf"^{a['username']}\s+{(a['last_login'] or 'never')[:16]}\s+\S+\s+\S+\s+{state}\s"
        assert re.search(row, text, re.MULTILINE), a["username"]
    for c in access["role_change_list"]:
        row = rf"^{c['seq']}\s+{c['at'][:16]}\s+{c['action']} \(account {c['object_id']}\)\s+sofia$"
        assert re.search(row, text, re.MULTILINE), c["seq"]


def test_a_tampered_audit_event_fails_the_integrity_section_and_opens_an_incident(
    seeded_quarter: dict[str, Any],
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the audit table's trigger is PostgreSQL's")
    victim = audit_events("security.lockout")[0]
    tamper_with_event(victim.seq)
    review = generate()
    integrity = review.sections["integrity"]
    assert not integrity["ok"]
    assert f"#{victim.seq}" in integrity["verification"]["first_problem"]
    pci = {item["requirement"]: item["status"] for item in review.sections["pci"]}
    assert pci["10.3.4"] == "not met"
    incident = Incident.objects.get(detector_key="audit_chain")
    assert incident.kind == "audit_tampering"


def test_generating_again_replaces_the_draft(seeded_quarter: dict[str, Any]) -> None:
    first = generate()
    second = generate()
    assert first.pk == second.pk and SecurityReview.objects.count() == 1
    assert len(audit_events("review.generated", second)) == 2


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (dt.date(2026, 9, 30), dt.date(2026, 7, 1), "period_end"),
        (dt.date(2026, 7, 1), dt.date(2099, 9, 30), "period_end"),
    ],
)
def test_a_bad_period_is_refused_by_field_and_nothing_is_generated(
    start: dt.date, end: dt.date, field: str, officer: User
) -> None:
    with pytest.raises(ReviewRefused) as refused:
        services.generate_review(period_start=start, period_end=end, by=officer, scanners=False)
    assert refused.value.field == field
    assert not SecurityReview.objects.exists()


def test_every_other_role_may_not_generate(other_roles: list[User]) -> None:
    for user in other_roles:
        with pytest.raises(ReviewRefused):
            services.generate_review(period_start=Q3[0], period_end=Q3[1], by=user, scanners=False)
    assert not SecurityReview.objects.exists()


def test_the_quarter_end_job_generates_the_last_quarter_once(db: None) -> None:
    with at(1, month=10, hour=3):
        review = services.generate_due_review()
        assert review is not None
        assert (review.period_start, review.period_end) == Q3
        assert review.label == "2026 Q3"
        assert services.generate_due_review() is None
