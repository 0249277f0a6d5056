"""Verify the chain and sign a checkpoint from the admin: security officers and auditors
only; the verification runs as a background job, shows its progress, and its result joins
the chain and the dashboard."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_q.models import OrmQ

from audit import SYSTEM, record
from audit.models import AuditCheckpoint, ChainVerification
from audit.selectors import chain_health
from audit.tasks import verify_chain_job
from security import roles
from security.models import User
from tests.audit.test_verify import behind_the_triggers_back
from tests.factories import audit_events, make_user, with_role

pytestmark = pytest.mark.django_db

VERIFY = "admin:audit_verify_chain"
CHECKPOINT_NOW = "admin:audit_checkpoint_now"


def _staff(role: str) -> User:
    return with_role(make_user(f"u-{role[:8].lower().replace(' ', '')}", is_staff=True), role)


@pytest.mark.parametrize("role", [roles.SECURITY_OFFICER, roles.AUDITOR])
def test_a_verification_is_queued_runs_as_a_job_and_is_recorded(
    role: str,
    admin_client_for: Callable[[User], Client],
    django_capture_on_commit_callbacks: Any,
) -> None:
    for index in range(5):
        record("demo.step", actor=SYSTEM, index=index)
    user = _staff(role)
    client = admin_client_for(user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse(VERIFY))
    verification = ChainVerification.objects.get()
    queued = client.get(reverse(VERIFY)).content.decode()
    assert response.status_code == 302
    assert OrmQ.objects.count() == 1  # the job, in the broker's queue table
    assert verification.status == "queued" and 'http-equiv="refresh"' in queued

    assert verify_chain_job(verification.pk) == "passed"
    page = client.get(reverse(VERIFY)).content.decode()
    home = client.get(reverse("admin:index")).content.decode()
    verification.refresh_from_db()
    (requested,) = audit_events("audit.chain_verification_requested")
    (verified,) = audit_events("audit.chain_verified")
    assert requested.actor_id == str(user.pk)
    assert verified.details["ok"] is True and verified.details["events"] == verification.last_seq
    assert verification.percent == 100 and "Chain intact" in page
    assert 'id="chain-status"' in home and "Chain intact" in home


@pytest.mark.postgres_only
def test_a_broken_chain_is_named_on_the_page_and_the_dashboard(
    admin_client_for: Callable[[User], Client],
) -> None:
    for index in range(6):
        record("demo.step", actor=SYSTEM, index=index)
    with behind_the_triggers_back(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET details = '{\"index\": 99}' WHERE seq = 3")
    client = admin_client_for(_staff(roles.AUDITOR))
    client.post(reverse(VERIFY))

    assert verify_chain_job(ChainVerification.objects.get().pk) == "failed"
    page = client.get(reverse(VERIFY)).content.decode()
    home = client.get(reverse("admin:index")).content.decode()
    assert "#3: hash mismatch" in page and "#3: hash mismatch" in home
    assert audit_events("audit.chain_verified")[0].details["first_broken_seq"] == 3


def test_a_second_request_while_one_runs_shows_the_running_one(
    admin_client_for: Callable[[User], Client],
) -> None:
    record("demo.step", actor=SYSTEM)
    client = admin_client_for(_staff(roles.SECURITY_OFFICER))
    client.post(reverse(VERIFY))
    client.post(reverse(VERIFY))

    assert ChainVerification.objects.count() == 1
    assert len(audit_events("audit.chain_verification_requested")) == 1


@pytest.mark.parametrize("role", [roles.SECURITY_OFFICER, roles.AUDITOR])
def test_checkpoint_now_signs_the_head(
    role: str, admin_client_for: Callable[[User], Client]
) -> None:
    record("demo.step", actor=SYSTEM)
    client = admin_client_for(_staff(role))

    response = client.post(reverse(CHECKPOINT_NOW), {"next": "index"})

    checkpoint = AuditCheckpoint.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert audit_events("audit.checkpointed")[0].actor_label.startswith("u-")
    assert chain_health().last_checkpoint == checkpoint


@pytest.mark.parametrize(
    "role",
    [
        roles.BILLING_CLERK,
        roles.ACCOUNTANT,
        roles.PAYMENTS_OPERATOR,
        roles.FRAUD_ANALYST,
    ],
)
def test_other_roles_may_neither_verify_nor_sign(
    role: str, admin_client_for: Callable[[User], Client]
) -> None:
    record("demo.step", actor=SYSTEM)
    client = admin_client_for(_staff(role))

    answers = [
        client.get(reverse(VERIFY)).status_code,
        client.post(reverse(VERIFY)).status_code,
        client.post(reverse(CHECKPOINT_NOW)).status_code,
    ]
    home = client.get(reverse("admin:index")).content.decode()

    assert answers == [403, 403, 403]
    assert not ChainVerification.objects.exists() and not AuditCheckpoint.objects.exists()
    assert 'id="panel-governance"' not in home


def test_a_customer_and_an_unverified_session_are_sent_away(
    alice: User, unverified_staff_client_for: Callable[[User], Client]
) -> None:
    client = Client()
    client.force_login(alice)
    unverified = unverified_staff_client_for(_staff(roles.SECURITY_OFFICER))

    for c in (client, unverified):
        assert c.post(reverse(VERIFY)).status_code == 302  # to the sign-in / verification
    assert not ChainVerification.objects.exists()


def test_the_governance_panel_runs_as_many_queries_with_ten_times_the_log(
    admin_client_for: Callable[[User], Client],
) -> None:
    client = admin_client_for(_staff(roles.AUDITOR))
    record("demo.step", actor=SYSTEM)
    client.get(reverse("admin:index"))
    with CaptureQueriesContext(connection) as before:
        client.get(reverse("admin:index"))
    for index in range(20):
        record("demo.step", actor=SYSTEM, index=index)
        make_user(f"staff-{index}", is_staff=True)
    with CaptureQueriesContext(connection) as after:
        page = client.get(reverse("admin:index")).content.decode()

    assert len(after) == len(before)
    assert 'id="panel-governance"' in page


def test_the_account_figures_equal_direct_queries(
    admin_client_for: Callable[[User], Client],
) -> None:
    """Staff is the flag or a staff role; lockouts are the audit log's (account lockouts
    and blocked addresses), the same figures the quarterly review reports."""
    from axes.models import AccessFailureLog
    from django.utils import timezone

    from audit import evidence
    from audit.models import AuditEvent
    from security.selectors import access_figures, has_second_factor, is_staff_account

    officer = _staff(roles.SECURITY_OFFICER)
    admin_client_for(officer)  # gives the officer a confirmed TOTP device
    bare = make_user("no-factor", is_staff=True)
    role_only = with_role(make_user("role-only"), roles.AUDITOR)  # no staff flag
    make_user("a-customer")
    for locked in (False, True, True):
        AccessFailureLog.objects.create(
            username="mallory",
            ip_address="192.0.2.9",
            user_agent="x",
            locked_out=locked,
            attempt_time=timezone.now(),
            http_accept="",
            path_info="/account/login/",
        )
    record("security.lockout", actor=SYSTEM, username="mallory", minutes=30)
    record("security.address_blocked", actor=SYSTEM, address="192.0.2.9", failures=100)
    record("security.unlocked", actor=SYSTEM, username="mallory", attempts=3)

    figures = access_figures()

    staff = [u for u in User.objects.filter(is_active=True) if is_staff_account(u)]
    assert [u.pk for u in figures.staff_without_factor] == [
        u.pk for u in sorted(staff, key=lambda u: u.username) if not has_second_factor(user=u)
    ]
    assert bare in figures.staff_without_factor and officer not in figures.staff_without_factor
    assert role_only in figures.staff_without_factor
    day_ago = timezone.now() - datetime.timedelta(hours=24)
    lockouts = AuditEvent.objects.filter(
        action__in=["security.lockout", "security.address_blocked"], created_at__gte=day_ago
    ).count()
    assert (figures.failed_logins_24h, figures.lockouts_24h) == (3, lockouts) == (3, 2)
    # The quarterly review's figures are the same ones.
    assert evidence.staff_without_second_factor() == len(figures.staff_without_factor)
    assert evidence.lockouts_since(day_ago) == figures.lockouts_24h
