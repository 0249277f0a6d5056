"""Tampered ``next`` after sign-in, a second factor or the language switch, and languages we
do not have: each is refused with a clear answer, and nothing changes."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.test import Client

from audit.models import AuditEvent
from billing.models import Customer
from security.models import User, UserSession
from tests.mfa_helpers import give_totp_device, totp_code

PASSWORD = "correct horse battery staple"
EVIL = "https://evil.example/portal/"

pytestmark = pytest.mark.django_db


def _language_cookie(response: object) -> str | None:
    """The language cookie a response sets (None: none). A customer's answers carry their
    profile's language; a refused switch must not carry the language it asked for."""
    morsel = response.cookies.get(settings.LANGUAGE_COOKIE_NAME)  # type: ignore[attr-defined]
    return None if morsel is None else str(morsel.value)


def _signed_in(client: Client) -> bool:
    return settings.SESSION_COOKIE_NAME in client.cookies and "_auth_user_id" in client.session


def test_a_sign_in_form_posting_another_sites_next_is_refused_before_the_password(
    alice: User,
) -> None:
    client = Client()
    events = AuditEvent.objects.count()
    response = client.post(
        "/account/login/", {"username": alice.email, "password": PASSWORD, "next": EVIL}
    )

    assert response.status_code == 400
    assert "next: only a page of this site" in response.content.decode()
    assert not _signed_in(client)
    assert not UserSession.objects.exists()
    assert not AccessAttempt.objects.exists() and not AccessFailureLog.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_sign_in_link_carrying_another_sites_next_warns_and_drops_it(alice: User) -> None:
    client = Client()
    page = client.get("/account/login/", {"next": "//evil.example/"}).content.decode()

    assert "The link you followed was changed" in page
    assert 'value="//evil.example/"' not in page  # the sign-in form does not carry it
    response = client.post("/account/login/", {"username": alice.email, "password": PASSWORD})
    assert response["Location"] == "/"  # the front door, never the other site


def test_a_local_next_is_followed_after_sign_in(alice: User) -> None:
    response = Client().post(
        "/account/login/",
        {"username": alice.email, "password": PASSWORD, "next": "/portal/cards/"},
    )
    assert response.status_code == 302 and response["Location"] == "/portal/cards/"


def test_the_second_factor_page_refuses_another_sites_next_and_verifies_nothing(
    alice: User,
) -> None:
    device = give_totp_device(alice)
    client = Client()
    client.post("/account/login/", {"username": alice.email, "password": PASSWORD})

    response = client.post("/account/verify/", {"code": totp_code(device), "next": EVIL})

    assert response.status_code == 400
    assert "next:" in response.content.decode()
    assert client.get("/portal/").status_code == 302  # still owes the second factor
    assert not AuditEvent.objects.filter(action="security.mfa_verified").exists()


def test_step_up_refuses_another_sites_next(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    response = client.get("/account/step-up/", {"next": "/\\evil.example"})
    assert response.status_code == 400


@pytest.mark.parametrize("code", ["xx", "", "de", "sv-SE", "en<script>", "sv\x00"])
def test_a_language_we_do_not_have_is_refused_and_changes_nothing(
    alice: User, alice_company: Customer, code: str
) -> None:
    client = Client()
    client.force_login(alice)

    response = client.post("/language/", {"language": code, "next": "/portal/"})

    assert response.status_code == 400
    if "\x00" not in code:  # a NUL is refused before any page (security's middleware)
        assert "language:" in response.content.decode()
        assert "<script>" not in response.content.decode()
    alice_company.refresh_from_db()
    assert alice_company.language == "sv"
    assert _language_cookie(response) in (None, "sv")
    assert not AuditEvent.objects.filter(action="customer.language_changed").exists()


@pytest.mark.parametrize("tampered", [EVIL, "//evil.example", "javascript:alert(1)"])
def test_the_language_switch_refuses_another_sites_next_and_changes_nothing(
    alice: User, alice_company: Customer, tampered: str
) -> None:
    client = Client()
    client.force_login(alice)

    response = client.post("/language/", {"language": "en", "next": tampered})

    assert response.status_code == 400
    assert "next:" in response.content.decode()
    alice_company.refresh_from_db()
    assert alice_company.language == "sv"
    assert _language_cookie(response) in (None, "sv")


def test_the_language_switch_needs_the_pages_csrf_token(
    alice: User, alice_company: Customer
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post("/language/", {"language": "en", "next": "/portal/"})

    assert response.status_code == 403
    assert "Formuläret har gått ut" in response.content.decode()  # in Alice's Swedish
    alice_company.refresh_from_db()
    assert alice_company.language == "sv"


def test_the_language_switch_answers_only_posts(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    assert client.get("/language/", {"language": "en"}).status_code == 405


def test_a_half_signed_in_customer_switches_only_the_pages_not_the_profile(
    alice: User, alice_company: Customer
) -> None:
    give_totp_device(alice)
    client = Client()
    client.post("/account/login/", {"username": alice.email, "password": PASSWORD})

    response = client.post("/language/", {"language": "en", "next": "/account/verify/"})

    assert response.status_code == 302
    assert _language_cookie(response) == "en"
    alice_company.refresh_from_db()
    assert alice_company.language == "sv"  # the profile waits for the second factor
