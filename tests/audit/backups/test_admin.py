"""Backups and restore tests in the admin: security officers and auditors read them; no
other role reaches them; nobody adds, changes or deletes one there."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.test import Client

from audit.backups.models import BackupRun, RestoreTest
from security import roles
from security.models import User
from tests.factories import make_user, with_role

pytestmark = pytest.mark.django_db

RUNS = "/admin/audit/backuprun/"
TESTS = "/admin/audit/restoretest/"
WHEN = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def failed_test() -> RestoreTest:
    run = BackupRun.objects.create(
        name="20260301T030000.000000Z-data",
        kind="data",
        status="succeeded",
        path="/nowhere",
        started_at=WHEN,
    )
    return RestoreTest.objects.create(
        backup=run,
        backup_name=run.name,
        started_at=WHEN,
        finished_at=WHEN,
        passed=False,
        checks=[{"name": "audit chain", "ok": False, "detail": "#3: untrusted key"}],
    )


def staff(role: str) -> User:
    return with_role(make_user(f"staff-{role.lower().replace(' ', '-')}", is_staff=True), role)


@pytest.mark.parametrize("role", [roles.SECURITY_OFFICER, roles.AUDITOR])
def test_officers_and_auditors_see_a_failed_restore_test(
    role: str, failed_test: RestoreTest, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(staff(role))
    listing = client.get(TESTS)
    assert listing.status_code == 200
    assert "restore-failed" in listing.content.decode()
    detail = client.get(f"{TESTS}{failed_test.pk}/change/")
    assert "#3: untrusted key" in detail.content.decode()
    assert client.get(RUNS).status_code == 200
    assert client.get(f"{RUNS}add/").status_code == 403
    assert client.post(f"{RUNS}{failed_test.backup_id}/delete/", {"post": "yes"}).status_code == 403
    assert BackupRun.objects.filter(name=failed_test.backup_name).exists()


@pytest.mark.parametrize(
    "role",
    [roles.BILLING_CLERK, roles.ACCOUNTANT, roles.PAYMENTS_OPERATOR, roles.FRAUD_ANALYST],
)
def test_other_roles_cannot_reach_backups(
    role: str, failed_test: RestoreTest, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(staff(role))
    for url in (RUNS, TESTS, f"{TESTS}{failed_test.pk}/change/"):
        assert client.get(url).status_code == 403


def test_a_customer_cannot_reach_backups(alice: User, failed_test: RestoreTest) -> None:
    client = Client()
    client.force_login(alice)
    response = client.get(TESTS)
    assert response.status_code in (302, 403)
    assert "untrusted key" not in response.content.decode()
