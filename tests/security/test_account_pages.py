"""The account pages: customers enroll factors themselves; no inline script anywhere (CSP);
over-long sign-in input is refused before any lookup."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from security.models import User
from tests.mfa_helpers import give_totp_device, mark_client_verified, totp_code

PASSWORD = "Correct9horse4battery"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)


@pytest.fixture
def alice() -> User:
    return User.objects.create_user(
        username="alice-portal", email="alice@example.test", password=PASSWORD
    )


@pytest.mark.django_db
def test_a_customer_enrolls_totp_from_the_account_page(alice: User) -> None:
    with time_machine.travel(START, tick=False):
        client = Client()
        client.force_login(alice)
        assert "Add an authenticator app" in client.get("/account/").content.decode()
        client.post("/account/mfa/totp/", {"start": "1"})
        device = TOTPDevice.objects.get(user=alice, confirmed=False)
        response = client.post("/account/mfa/totp/", {"code": totp_code(device)})
    assert response.status_code == 200
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert AuditEvent.objects.filter(action="security.mfa_enrolled").exists()


@pytest.mark.django_db
def test_a_wrong_first_code_leaves_the_new_device_unconfirmed(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    client.post("/account/mfa/totp/", {"start": "1"})
    device = TOTPDevice.objects.get(user=alice)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    response = client.post("/account/mfa/totp/", {"code": wrong})
    assert "not valid for the new device" in response.content.decode()
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed


@pytest.mark.django_db
def test_a_second_device_is_added_only_from_a_verified_session(alice: User) -> None:
    give_totp_device(alice)
    client = Client()
    client.force_login(alice)
    response = client.post("/account/mfa/totp/", {"start": "1"})
    assert response["Location"].startswith("/account/verify/")
    assert TOTPDevice.objects.filter(user=alice).count() == 1


@pytest.mark.django_db
def test_the_security_pages_carry_no_inline_script(alice: User) -> None:
    device = give_totp_device(alice)
    client = Client()
    client.force_login(alice)
    mark_client_verified(client, device)
    client.post("/account/mfa/totp/", {"start": "1"})
    for url in ["/account/", "/account/mfa/totp/", "/account/password/", "/account/step-up/"]:
        page = client.get(url).content.decode()
        assert not INLINE_SCRIPT.search(page), url
        assert not re.search(r"<[^>]+\son[a-z]+=", page), url  # no inline event handlers
    anonymous = Client()
    for url in ["/account/login/", "/account/password/reset/"]:
        page = anonymous.get(url).content.decode()
        assert not INLINE_SCRIPT.search(page), url


@pytest.mark.django_db
def test_an_overlong_login_name_gets_a_message_and_counts_nothing() -> None:
    response = Client().post("/account/login/", {"username": "a" * 5000, "password": "x"})
    assert response.status_code == 200
    assert "at most 254 characters" in response.content.decode()
    assert not AccessAttempt.objects.exists()


@pytest.mark.django_db
def test_the_login_answer_does_not_say_whether_the_account_exists(alice: User) -> None:
    known = Client().post("/account/login/", {"username": "alice-portal", "password": "nope"})
    unknown = Client().post("/account/login/", {"username": "nobody-here", "password": "nope"})
    message = "That login name and password do not match an active account."
    assert message in known.content.decode()
    assert message in unknown.content.decode()
