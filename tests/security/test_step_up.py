"""Step-up: a second factor verified within the last 5 minutes, proved on role changes and on
removing an MFA device."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from security.models import User
from security.roles import BILLING_CLERK, SECURITY_OFFICER
from tests.mfa_helpers import give_totp_device, totp_code

PASSWORD = "Correct9horse4battery"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def officer() -> User:
    user = User.objects.create_user(username="sofia", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=SECURITY_OFFICER))
    return user


@pytest.fixture
def kim() -> User:
    return User.objects.create_user(username="kim", password=PASSWORD, is_staff=True)


@pytest.mark.django_db
def test_a_role_change_needs_a_fresh_second_factor(
    officer: User, kim: User, admin_client_for: Callable[[User], Client]
) -> None:
    url = f"/account/users/{kim.pk}/roles/"
    with time_machine.travel(START, tick=False) as clock:
        client = admin_client_for(officer)
        clock.shift(dt.timedelta(minutes=5, seconds=1))
        response = client.post(url, {"roles": [BILLING_CLERK]})
        assert response.status_code == 302
        assert response["Location"].startswith("/account/step-up/")
        assert not kim.groups.exists()

        clock.shift(dt.timedelta(seconds=30))
        device = TOTPDevice.objects.get(user=officer)
        client.post("/account/step-up/", {"code": totp_code(device), "next": url})
        response = client.post(url, {"roles": [BILLING_CLERK]})

    assert response.status_code == 302
    assert list(kim.groups.values_list("name", flat=True)) == [BILLING_CLERK]
    event = AuditEvent.objects.filter(action="security.roles_changed").get()
    assert event.actor_label == "sofia"
    assert event.details == {"before": [], "after": [BILLING_CLERK]}


@pytest.mark.django_db
def test_a_role_change_ends_the_target_users_sessions(
    officer: User, kim: User, admin_client_for: Callable[[User], Client]
) -> None:
    kim_client = admin_client_for(kim)
    assert kim_client.get("/admin/").status_code == 200
    admin_client_for(officer).post(f"/account/users/{kim.pk}/roles/", {"roles": [BILLING_CLERK]})
    assert kim_client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_only_a_security_officer_changes_roles(
    kim: User, admin_client_for: Callable[[User], Client]
) -> None:
    other = User.objects.create_user(username="other", is_staff=True)
    response = admin_client_for(kim).post(
        f"/account/users/{other.pk}/roles/", {"roles": [SECURITY_OFFICER]}
    )
    assert response.status_code == 403
    assert not other.groups.exists()


@pytest.mark.django_db
def test_unknown_roles_are_refused_and_nothing_changes(
    officer: User, kim: User, admin_client_for: Callable[[User], Client]
) -> None:
    response = admin_client_for(officer).post(
        f"/account/users/{kim.pk}/roles/", {"roles": ["Superuser"]}
    )
    assert response.status_code == 200
    assert "Superuser is not one of the available choices" in response.content.decode()
    assert not kim.groups.exists()


@pytest.mark.django_db
def test_removing_an_mfa_device_needs_a_fresh_second_factor(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = admin_client_for(officer)
        spare = TOTPDevice.objects.create(user=officer, name="Spare phone", confirmed=True)
        clock.shift(dt.timedelta(minutes=6))
        response = client.post("/account/mfa/remove/", {"device": spare.persistent_id})
        assert response["Location"].startswith("/account/step-up/")
        assert TOTPDevice.objects.filter(pk=spare.pk).exists()

        client.post("/account/step-up/", {"code": totp_code(give_totp_device(officer))})
        client.post("/account/mfa/remove/", {"device": spare.persistent_id})

    assert not TOTPDevice.objects.filter(pk=spare.pk).exists()
    assert AuditEvent.objects.filter(action="security.mfa_device_removed").exists()


@pytest.mark.django_db
def test_staff_cannot_remove_their_last_factor(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(officer)
    device = TOTPDevice.objects.get(user=officer)
    response = client.post("/account/mfa/remove/", {"device": device.persistent_id}, follow=True)
    assert "staff must keep at least one second factor" in response.content.decode()
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


@pytest.mark.django_db
def test_nobody_removes_another_users_device(
    officer: User, kim: User, admin_client_for: Callable[[User], Client]
) -> None:
    kims = give_totp_device(kim)
    response = admin_client_for(officer).post(
        "/account/mfa/remove/", {"device": kims.persistent_id}, follow=True
    )
    assert "no such device of yours" in response.content.decode()
    assert TOTPDevice.objects.filter(pk=kims.pk).exists()
