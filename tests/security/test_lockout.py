"""Brute force (PCI DSS 8.3.4): 10 failures lock an account for 30 minutes; 100 failures from
one address in an hour block the address; a security officer can lift a lockout."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory

from audit.models import AuditEvent
from security import services
from security.exceptions import NotAllowed, StepUpRequired
from security.models import User
from security.roles import SECURITY_OFFICER
from tests.mfa_helpers import give_totp_device, mark_client_verified

PASSWORD = "Correct9horse4battery"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def carla() -> User:
    return User.objects.create_user(username="carla", email="carla@example.test", password=PASSWORD)


def _login(username: str, password: str, ip: str = "198.51.100.7") -> int:
    response = Client(REMOTE_ADDR=ip).post(
        "/account/login/", {"username": username, "password": password}
    )
    return response.status_code


def test_the_configuration_is_ten_failures_thirty_minutes_and_a_hundred_per_address_hour() -> None:
    assert settings.AXES_FAILURE_LIMIT == 10
    assert dt.timedelta(minutes=30) == settings.AXES_COOLOFF_TIME
    assert settings.SECURITY_IP_FAILURE_LIMIT == 100
    assert dt.timedelta(hours=1) == settings.SECURITY_IP_FAILURE_WINDOW
    assert settings.AUTHENTICATION_BACKENDS[0].startswith("axes.")


@pytest.mark.django_db
def test_ten_failures_lock_the_account_for_thirty_minutes(carla: User) -> None:
    with time_machine.travel(START, tick=False) as clock:
        answers = [_login("carla", "wrong-password-1") for _ in range(10)]
        assert answers == [200] * 9 + [429]  # the tenth failure locks
        assert _login("carla", PASSWORD) == 429
        clock.move_to(START + dt.timedelta(minutes=29))
        assert _login("carla", PASSWORD) == 429
        clock.move_to(START + dt.timedelta(minutes=30, seconds=1))
        assert _login("carla", PASSWORD) == 302

    lockouts = AuditEvent.objects.filter(action="security.lockout")
    assert [e.details for e in lockouts] == [{"username": "carla", "minutes": 30}]


@pytest.mark.django_db
def test_nine_failures_do_not_lock(carla: User) -> None:
    for _ in range(9):
        _login("carla", "wrong-password-1")
    assert _login("carla", PASSWORD) == 302


@pytest.mark.django_db
def test_the_lockout_ignores_the_case_of_the_login_name(carla: User) -> None:
    for name in ["carla", "CARLA", "Carla", "cArla", "carlA"] * 2:
        _login(name, "wrong-password-1")
    assert _login("carla", PASSWORD) == 429


@pytest.mark.django_db
def test_an_address_failing_too_often_is_blocked_whatever_name_it_tries(
    carla: User, settings: object
) -> None:
    settings.SECURITY_IP_FAILURE_LIMIT = 12  # type: ignore[attr-defined]
    for n in range(12):
        _login(f"guess{n}", "wrong-password-1", ip="203.0.113.9")
    assert _login("carla", PASSWORD, ip="203.0.113.9") == 429
    assert _login("carla", PASSWORD, ip="198.51.100.7") == 302
    assert AuditEvent.objects.filter(
        action="security.address_blocked", details__address="203.0.113.9"
    ).exists()


def _officer_request(officer: User, *, fresh: bool):
    client = Client()
    client.force_login(officer)
    if fresh:
        mark_client_verified(client, give_totp_device(officer))
    request = RequestFactory().post("/account/unlock/")
    request.session = client.session
    request.user = officer
    request.user.is_verified = lambda: fresh  # type: ignore[attr-defined]
    return request


@pytest.mark.django_db
def test_a_security_officer_lifts_a_lockout_with_step_up(carla: User) -> None:
    officer = User.objects.create_user(username="sofia", password=PASSWORD, is_staff=True)
    officer.groups.add(Group.objects.get(name=SECURITY_OFFICER))
    officer = User.objects.get(pk=officer.pk)
    for _ in range(10):
        _login("carla", "wrong-password-1")
    assert _login("carla", PASSWORD) == 429

    with pytest.raises(StepUpRequired):
        services.unlock_account(
            username="carla", by=officer, request=_officer_request(officer, fresh=False)
        )
    assert _login("carla", PASSWORD) == 429

    services.unlock_account(
        username="Carla", by=officer, request=_officer_request(officer, fresh=True)
    )
    assert _login("carla", PASSWORD) == 302
    event = AuditEvent.objects.filter(action="security.unlocked").get()
    assert event.actor_label == "sofia"
    assert event.details["username"] == "carla"


@pytest.mark.django_db
def test_only_a_security_officer_may_lift_a_lockout(carla: User) -> None:
    clerk = User.objects.create_user(username="kim", password=PASSWORD, is_staff=True)
    with pytest.raises(NotAllowed):
        services.unlock_account(
            username="carla", by=clerk, request=_officer_request(clerk, fresh=True)
        )
