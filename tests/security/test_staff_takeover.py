"""Issue 17, item 1: a security officer took over the payments operator's account.

The officer read the operator's TOTP secret in django-otp's admin (change page,
``config/`` and ``qrcode/``) and set the operator's password in the user admin, then
signed in as the operator and refunded. Now nobody sees another person's secret, no
page sets another person's password, and a reset goes through a service: step-up, a
named audit event, an e-mail to the owner, the owner's sessions ended, and the owner
chooses their own password and enrols their own factor.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from security.models import User, UserSession
from security.roles import PAYMENTS_OPERATOR, SECURITY_OFFICER
from tests.factories import audit_events, make_user
from tests.mfa_helpers import give_totp_device

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Mine4alone9andnobodyelse"


def _with_role(username: str, role: str) -> User:
    user = make_user(username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def officer() -> User:
    return _with_role("sofia", SECURITY_OFFICER)


@pytest.fixture
def operator() -> User:
    return _with_role("olle", PAYMENTS_OPERATOR)


def _secrets_of(device: TOTPDevice) -> list[str]:
    raw = device.bin_key
    return [device.key, base64.b32encode(raw).decode().rstrip("="), base64.b64encode(raw).decode()]


def test_the_officer_never_sees_the_operators_totp_secret(
    officer: User, operator: User, admin_client_for: Callable[[User], Client]
) -> None:
    device = give_totp_device(operator)
    client = admin_client_for(officer)
    base = f"/admin/otp_totp/totpdevice/{device.pk}"

    change = client.get(f"{base}/change/")
    listing = client.get("/admin/otp_totp/totpdevice/")

    assert change.status_code == 200 and listing.status_code == 200
    for page in (change, listing):
        text = page.content.decode()
        assert not any(secret in text for secret in _secrets_of(device))
        assert "qrcode" not in text.lower()
    assert client.get(f"{base}/config/").status_code in (302, 404)
    assert client.get(f"{base}/qrcode/").status_code in (302, 404)
    assert b"otpauth://" not in client.get(f"{base}/config/", follow=True).content


def test_no_page_sets_another_persons_password(
    officer: User, operator: User, admin_client_for: Callable[[User], Client]
) -> None:
    before = operator.password
    client = admin_client_for(officer)
    url = f"/admin/security/user/{operator.pk}/password/"

    page = client.get(url)
    answer = client.post(url, {"password1": "Taken0ver4good!x", "password2": "Taken0ver4good!x"})

    assert page.status_code != 200 or b'name="password1"' not in page.content
    assert answer.status_code in (302, 404)
    operator.refresh_from_db()
    assert operator.password == before
    assert not operator.check_password("Taken0ver4good!x")


def test_the_user_page_shows_no_password_hash(
    officer: User, operator: User, admin_client_for: Callable[[User], Client]
) -> None:
    page = admin_client_for(officer).get(f"/admin/security/user/{operator.pk}/change/")

    text = page.content.decode()
    _algorithm, _, rest = operator.password.partition("$")
    assert page.status_code == 200
    assert operator.password not in text
    assert not any(part in text for part in rest.split("$") if len(part) >= 6)
    assert "reset password and second factors" in text


def test_a_reset_ends_everything_and_the_owner_chooses_their_own_password_and_factor(
    officer: User,
    operator: User,
    admin_client_for: Callable[[User], Client],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    operators_session = admin_client_for(operator)  # signed in, with a TOTP device
    assert operators_session.get("/admin/").status_code == 200
    officer_client = admin_client_for(officer)

    with django_capture_on_commit_callbacks(execute=True):
        answer = officer_client.post(reverse("security:reset_credentials", args=[operator.pk]))

    assert answer.status_code == 302
    operator.refresh_from_db()
    assert not operator.has_usable_password()
    assert not TOTPDevice.objects.filter(user=operator).exists()
    assert not UserSession.objects.filter(user=operator).exists()
    assert operators_session.get("/admin/").status_code == 302  # signed out
    (event,) = audit_events("security.credentials_reset", operator)
    assert event.actor_id == str(officer.pk)
    assert event.details["factors_removed"] == ["TOTPDevice"]
    assert event.details["sessions_ended"] >= 1
    (notice,) = mail.outbox
    assert notice.to == [operator.email]
    assert "sofia" in notice.body and "security officer" in notice.body
    link = re.search(r"https?://\S+/account/password/reset/\S+/", str(notice.body))
    assert link

    # The owner, and only the owner, chooses the new password from the link...
    owner = Client()
    path = link.group(0).split("testserver", 1)[1]
    form_page = owner.get(path, follow=True)
    owner.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else path,
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    operator.refresh_from_db()
    assert operator.check_password(NEW_PASSWORD)
    # ...and enrols a new factor before anything else at the next sign-in.
    signed_in = owner.post(
        reverse("security:login"), {"username": "olle", "password": NEW_PASSWORD}
    )
    assert reverse("security:enroll_totp") in signed_in["Location"]
    assert owner.get("/admin/").status_code == 302


def test_a_reset_needs_a_fresh_second_factor(
    officer: User, operator: User, admin_client_for: Callable[[User], Client], settings: object
) -> None:
    give_totp_device(operator)
    client = admin_client_for(officer)
    later = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(minutes=10)
    with time_machine.travel(later, tick=False):
        answer = client.post(reverse("security:reset_credentials", args=[operator.pk]))

    assert reverse("security:step_up") in answer["Location"]
    assert TOTPDevice.objects.filter(user=operator).exists()
    assert audit_events("security.credentials_reset") == []


def test_nobody_resets_their_own_account_and_other_roles_cannot_reset(
    officer: User, operator: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(officer)
    client.post(reverse("security:reset_credentials", args=[officer.pk]))
    officer.refresh_from_db()
    assert officer.has_usable_password()

    refused = admin_client_for(operator).post(
        reverse("security:reset_credentials", args=[officer.pk])
    )
    assert refused.status_code == 403
    assert audit_events("security.credentials_reset") == []


def test_a_new_account_gets_no_password_anyone_knows(
    admin_client_for: Callable[[User], Client],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    root = User.objects.create_superuser(username="root", email="root@example.test", password="x")
    client = admin_client_for(root)
    form = client.get("/admin/security/user/add/").content.decode()
    assert 'name="password1"' not in form

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/security/user/add/",
            {"username": "nina", "email": "nina@example.test", "first_name": "Nina"},
        )

    nina = User.objects.get(username="nina")
    assert not nina.has_usable_password()
    assert mail.outbox[-1].to == ["nina@example.test"]
    assert audit_events("security.account_created", nina)
