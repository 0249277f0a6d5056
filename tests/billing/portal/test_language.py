"""Every page a customer reaches speaks the customer's language, inside the portal's shell;
the language switch remembers the choice in the profile (signed in) or a cookie (not)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from billing import services
from billing.models import Customer, Invoice
from billing.portal import views as portal_views
from payments.models import Payment
from payments.services import pay_invoice
from security.models import User
from tests.factories import audit_events
from tests.payments import conftest as payments_conftest
from tests.payments import fixtures as payment_fixtures
from tests.payments.fixtures import APPROVED, key, sek
from tests.payments.test_refund_purposes import fresh_step_up, operator

vault_keyring = payments_conftest.vault_keyring
thousand_sek_invoice = payment_fixtures.thousand_sek_invoice
saved_card = payment_fixtures.saved_card
refunding_operator = operator

pytestmark = pytest.mark.django_db


def h1(page: str) -> str:
    match = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
    assert match, "no <h1> on the page"
    return re.sub(r"<[^>]+>|\s+", " ", match.group(1)).strip()


def html_lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', page)
    assert match
    return match.group(1)


@pytest.fixture
def alice_paid(
    thousand_sek_invoice: Invoice, saved_card: Callable[[str], Any], alice: User
) -> Payment:
    """Alice's invoice, paid with her saved card (a payment page and a receipt to show)."""
    method = saved_card(APPROVED)
    return pay_invoice(
        thousand_sek_invoice,
        amount=sek(1000),
        payment_method=method.pk,
        idempotency_key=key(1),
        by=alice,
        request=None,
    )


@pytest.fixture
def customer_pages(
    alice_paid: Payment,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    refunding_operator: User,
) -> list[str]:
    """Every page a signed-in customer can open (a paid invoice with a partial refund and
    its credit note, an open invoice, a saved card)."""
    from payments.models import Refund
    from payments.services import refund_payment

    open_invoice = make_open_invoice(alice_company)
    card = alice_paid.payment_method
    assert card is not None
    refund_payment(
        alice_paid,
        amount=sek(100),
        reason="one seat returned",
        purpose="credit_note",
        by=refunding_operator,
        request=fresh_step_up(refunding_operator),
    )
    paid = Invoice.objects.get(pk=alice_paid.invoice_id)
    return [
        reverse("portal:invoices"),
        reverse("portal:invoice", args=[open_invoice.pk]),
        reverse("portal_pay:pay", args=[open_invoice.pk]),
        reverse("portal_pay:payment", args=[alice_paid.pk]),
        reverse("portal:receipt", args=[paid.pk]),
        reverse("portal_pay:refund", args=[Refund.objects.get().pk]),
        reverse("portal_pay:cards"),
        reverse("portal_pay:delete_card", args=[card.pk]),
        reverse("portal:account"),
        reverse("portal_pay:security"),
        reverse("security:account"),
        reverse("security:enroll_totp"),
        reverse("security:password_change"),
        reverse("security:step_up"),
        reverse("documents:verify"),
        "/no-such-page/",
    ]


@pytest.fixture
def verified_alice(alice: User) -> Client:
    """Alice signed in with a fresh second factor (the card deletion page asks for it)."""
    from tests.mfa_helpers import give_totp_device, mark_client_verified

    client = Client()
    client.force_login(alice)
    mark_client_verified(client, give_totp_device(alice))
    return client


def _read_all(client: Client, pages: list[str]) -> dict[str, tuple[int, str, str]]:
    answers = {}
    for path in pages:
        response = client.get(path)
        answers[path] = (
            response.status_code,
            response.headers.get("Content-Language", ""),
            response.content.decode(),
        )
    return answers


def test_every_customer_page_is_in_the_portal_shell_and_the_customers_language(
    verified_alice: Client, alice_company: Customer, alice: User, customer_pages: list[str]
) -> None:
    swedish = _read_all(verified_alice, customer_pages)
    services.set_customer_language(alice_company, language="en", by=alice)
    english = _read_all(verified_alice, customer_pages)

    for path in customer_pages:
        sv_status, sv_header, sv_page = swedish[path]
        en_status, en_header, en_page = english[path]
        expected = 404 if path == "/no-such-page/" else 200
        assert (sv_status, en_status) == (expected, expected), path
        assert (html_lang(sv_page), sv_header) == ("sv", "sv"), path
        assert (html_lang(en_page), en_header) == ("en", "en"), path
        # The portal's navigation and the language switch on every page.
        assert 'aria-label="Huvudmeny"' in sv_page and 'aria-label="Main"' in en_page, path
        assert 'lang="en">English</span>' in sv_page, path
        assert 'lang="sv">Svenska</span>' in en_page, path
        assert h1(sv_page) != h1(en_page), f"{path}: the heading is not translated"


def test_sign_in_lands_a_customer_on_her_invoices(alice: User) -> None:
    client = Client()
    response = client.post(
        "/account/login/",
        {"username": alice.email, "password": "correct horse battery staple"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("portal:invoices")
    assert h1(response.content.decode()) == "Dina fakturor"


def test_the_switch_keeps_the_customers_choice_in_her_profile(
    alice: User, alice_company: Customer
) -> None:
    client = Client()
    client.force_login(alice)

    response = client.post("/language/", {"language": "en", "next": "/portal/account/"})

    assert response.status_code == 302 and response["Location"] == "/portal/account/"
    alice_company.refresh_from_db()
    assert alice_company.language == "en"
    [event] = audit_events("customer.language_changed", alice_company)
    assert event.details == {"language": "en", "previous": "sv"}
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    # Another browser, signed in later, reads English too: the profile decides.
    other = Client(HTTP_ACCEPT_LANGUAGE="sv")
    other.force_login(alice)
    assert html_lang(other.get("/portal/").content.decode()) == "en"


def test_switching_to_the_language_already_chosen_records_nothing(
    alice: User, alice_company: Customer
) -> None:
    client = Client()
    client.force_login(alice)
    client.post("/language/", {"language": "sv", "next": "/portal/"})
    assert audit_events("customer.language_changed", alice_company) == []


def test_a_visitor_chooses_the_sign_in_pages_language_with_a_cookie() -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert h1(client.get("/account/login/").content.decode()) == "Sign in"

    response = client.post("/language/", {"language": "sv", "next": "/account/login/"})

    assert response["Location"] == "/account/login/"
    page = client.get("/account/login/").content.decode()
    assert (html_lang(page), h1(page)) == ("sv", "Logga in")
    assert "E-postadress eller användarnamn" in page


@pytest.mark.parametrize(
    "path",
    [
        "/account/login/",
        "/account/password/reset/",
        "/account/password/reset/sent/",
        "/account/password/reset/MQ/bad-token/",
    ],
)
def test_signed_out_pages_follow_the_browsers_language_in_the_shell(path: str) -> None:
    swedish = Client(HTTP_ACCEPT_LANGUAGE="sv").get(path, follow=True).content.decode()
    english = Client(HTTP_ACCEPT_LANGUAGE="en").get(path, follow=True).content.decode()
    assert (html_lang(swedish), html_lang(english)) == ("sv", "en")
    assert h1(swedish) != h1(english)
    assert 'class="site-header"' in swedish and "Huvudmeny" not in swedish  # no portal nav


def test_after_signing_out_the_sign_in_page_keeps_the_customers_language(alice: User) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(alice)
    client.get("/portal/")  # the answer remembers her language in the cookie
    client.post("/account/logout/")
    assert h1(client.get("/account/login/").content.decode()) == "Logga in"


def test_the_lockout_page_is_in_the_shell_and_the_visitors_language(alice: User) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="sv")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post("/account/login/", {"username": alice.email, "password": "wrong"})
    page = response.content.decode()
    assert response.status_code == 429
    assert h1(page) == "Inloggningen är spärrad"
    assert "spärrad i 30 minuter" in page


def test_a_fault_shows_the_500_page_in_the_shell_and_the_customers_language(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a fault on our side")

    monkeypatch.setattr(portal_views, "portal_invoices", broken)
    client = Client(raise_request_exception=False)
    client.force_login(alice)

    response = client.get("/portal/")

    page = response.content.decode()
    assert response.status_code == 500
    assert h1(page) == "Något gick fel"
    assert 'aria-label="Huvudmeny"' in page
    assert "a fault on our side" not in page


def test_a_refused_permission_shows_the_403_page_in_the_shell(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    response = client.get("/account/unlock/")
    assert response.status_code == 403
    assert h1(response.content.decode()) == "Inte tillåtet"


def test_a_bad_request_shows_the_400_page_in_the_shell() -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="sv", raise_request_exception=False)
    response = client.get("/account/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert h1(response.content.decode()) == "Något i förfrågan var fel"


def test_staff_have_no_portal_navigation_on_the_shared_pages(
    clerk: User, admin_client_for: Callable[[User], Client]
) -> None:
    page = admin_client_for(clerk).get("/no-such-page/").content.decode()
    assert h1(page) == "Page not found"
    assert 'aria-label="Main"' not in page
