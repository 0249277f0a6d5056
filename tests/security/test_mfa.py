"""Mandatory MFA for staff: the admin refuses unverified sessions; codes work once; bad input
changes nothing."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from security.models import BackupCode, BackupCodeDevice, User
from security.roles import SECURITY_OFFICER
from tests.mfa_helpers import give_totp_device, totp_code

PASSWORD = "Correct9horse4battery"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def officer() -> User:
    user = User.objects.create_user(username="sofia", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=SECURITY_OFFICER))
    return user


def _password_login(username: str) -> Client:
    client = Client()
    response = client.post("/account/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client


# The admin refuses a session without a verified second factor ----------------------------


@pytest.mark.django_db
def test_a_verified_staff_session_reaches_the_admin(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(officer)
    assert client.get("/admin/").status_code == 200
    assert client.get(f"/admin/security/user/{officer.pk}/change/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/admin/", "/admin/security/user/", "/admin/security/user/{pk}/change/"]
)
def test_an_unverified_staff_session_gets_no_admin_page(
    officer: User, unverified_staff_client_for: Callable[[User], Client], url: str
) -> None:
    client = unverified_staff_client_for(officer)
    response = client.get(url.format(pk=officer.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/account/verify/")


@pytest.mark.django_db
def test_an_unverified_staff_session_can_run_no_admin_action(
    officer: User, unverified_staff_client_for: Callable[[User], Client]
) -> None:
    victim = User.objects.create_user(username="victim", password=PASSWORD, is_staff=True)
    client = unverified_staff_client_for(officer)
    response = client.post(
        "/admin/security/user/",
        {"action": "delete_selected", "_selected_action": [victim.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert User.objects.filter(pk=victim.pk).exists()


@pytest.mark.django_db
def test_the_admin_site_itself_demands_verification_even_without_the_middleware(
    officer: User, unverified_staff_client_for: Callable[[User], Client], settings: object
) -> None:
    settings.MIDDLEWARE = [  # type: ignore[attr-defined]
        m
        for m in settings.MIDDLEWARE  # type: ignore[attr-defined]
        if m != "config.middleware.SessionPolicyMiddleware"
    ]
    client = unverified_staff_client_for(officer)
    response = client.get("/admin/security/user/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


# First login of staff: enrollment ------------------------------------------------------


@pytest.mark.django_db
def test_staff_without_a_device_is_walked_through_enrollment_at_first_login(
    officer: User,
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = Client()
        response = client.post(
            "/account/login/", {"username": "sofia", "password": PASSWORD, "next": "/admin/"}
        )
        assert response["Location"].startswith("/account/mfa/totp/")
        assert client.get("/admin/").status_code == 302

        client.post("/account/mfa/totp/", {"start": "1"})
        page = client.get("/account/mfa/totp/").content.decode()
        assert 'src="data:image/svg+xml' in page  # drawn locally, no external QR service
        device = TOTPDevice.objects.get(user=officer, confirmed=False)

        clock.shift(dt.timedelta(seconds=1))
        response = client.post("/account/mfa/totp/", {"code": totp_code(device)})
        page = response.content.decode()
        codes = re.findall(r"<code>([a-z2-7]{5}-[a-z2-7]{5})</code>", page)
        assert len(codes) == 10

        assert client.get("/admin/").status_code == 200

    device.refresh_from_db()
    assert device.confirmed
    stored = list(BackupCode.objects.values_list("code_hash", flat=True))
    assert len(stored) == 10
    assert not any(code.replace("-", "") in h for code in codes for h in stored)
    assert AuditEvent.objects.filter(action="security.mfa_enrolled", details__method="totp")


# Codes work once ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_totp_code_is_refused_the_second_time(officer: User) -> None:
    device = give_totp_device(officer)
    with time_machine.travel(START, tick=False):
        code = totp_code(device)
        first = _password_login("sofia")
        assert first.post("/account/verify/", {"code": code}).status_code == 302
        assert first.get("/admin/").status_code == 200

        second = _password_login("sofia")
        response = second.post("/account/verify/", {"code": code})
        assert response.status_code == 200
        assert "already used" in response.content.decode()
        assert second.get("/admin/").status_code == 302
    assert AuditEvent.objects.filter(action="security.mfa_failed").count() == 1


@pytest.mark.django_db
def test_a_backup_code_works_once(officer: User) -> None:
    give_totp_device(officer)
    device = BackupCodeDevice.objects.create(user=officer, name="Backup codes", confirmed=True)
    BackupCode.objects.create(device=device, code_hash=_hash("abcde-fghij"))

    first = _password_login("sofia")
    assert first.post("/account/verify/", {"code": "ABCDE FGHIJ"}).status_code == 302
    assert first.get("/admin/").status_code == 200

    second = _password_login("sofia")
    assert second.post("/account/verify/", {"code": "abcde-fghij"}).status_code == 200
    assert second.get("/admin/").status_code == 302
    assert not BackupCode.objects.exists()


def _hash(code: str) -> str:
    from security.mfa import hash_backup_code

    return hash_backup_code(code)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("12a4", "enter the 6 digits from your app or a backup code"),
        ("1234567", "enter the 6 digits from your app or a backup code"),
        ("<script>", "enter the 6 digits from your app or a backup code"),
        ("1" * 5000, "too long"),
        ("", "enter the code"),
    ],
)
def test_malformed_or_overlong_codes_get_a_clear_message_and_change_nothing(
    officer: User, code: str, message: str
) -> None:
    device = give_totp_device(officer)
    before = TOTPDevice.objects.values("last_t", "throttling_failure_count").get(pk=device.pk)
    client = _password_login("sofia")
    events_before = AuditEvent.objects.count()

    response = client.post("/account/verify/", {"code": code})

    assert response.status_code == 200
    assert message in response.content.decode()
    after = TOTPDevice.objects.values("last_t", "throttling_failure_count").get(pk=device.pk)
    assert after == before
    assert AuditEvent.objects.count() == events_before
    assert client.get("/admin/").status_code == 302


# Customers -------------------------------------------------------------------------------


@pytest.fixture
def alice_user() -> User:
    return User.objects.create_user(
        username="alice-portal", email="Alice@Example.test", password=PASSWORD
    )


@pytest.mark.django_db
def test_a_customer_without_a_factor_signs_in_with_email_and_password(alice_user: User) -> None:
    client = Client()
    response = client.post(
        "/account/login/", {"username": "alice@example.test", "password": PASSWORD}
    )
    assert response["Location"] == "/"  # the front door: customers on to their invoices
    assert client.get("/account/").status_code == 200


@pytest.mark.django_db
def test_a_customer_with_a_factor_must_verify_it_after_the_password(alice_user: User) -> None:
    device = give_totp_device(alice_user)
    with time_machine.travel(START, tick=False):
        client = Client()
        response = client.post(
            "/account/login/", {"username": "alice@example.test", "password": PASSWORD}
        )
        assert response["Location"].startswith("/account/verify/")
        assert client.get("/account/").status_code == 302
        client.post("/account/verify/", {"code": totp_code(device)})
        assert client.get("/account/").status_code == 200


@pytest.mark.django_db
def test_customers_need_mfa_before_saving_a_card_by_default(alice_user: User) -> None:
    from security.selectors import customer_may_save_card

    assert not customer_may_save_card(user=alice_user)
    give_totp_device(alice_user)
    assert customer_may_save_card(user=alice_user)
