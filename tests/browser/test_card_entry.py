"""The card form encrypts in the browser: the server never receives the card number."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.conf import settings as django_settings
from django.test import Client

from billing.models import Customer
from payments.models import PaymentMethod
from security.keyring import forget_cached_keyrings
from security.models import User
from tests.browser.conftest import requires_chromium
from tests.mfa_helpers import give_totp_device, mark_client_verified

pytestmark = [requires_chromium, pytest.mark.django_db(transaction=True)]

VISA = "4111111111111111"
CVC = "737"


@pytest.fixture(autouse=True)
def vault_keyring(settings: Any, tmp_path: Path) -> Any:
    settings.VAULT_KEYRING_FILE = tmp_path / "vault_keyring.json"
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048
    forget_cached_keyrings()
    yield
    forget_cached_keyrings()


def _sign_in(page: Any, user: User, base_url: str) -> None:
    """A portal session with a verified second factor, handed to the browser as its cookie."""
    client = Client()
    client.force_login(user)
    mark_client_verified(client, give_totp_device(user))
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": base_url}]
    )


def test_the_server_receives_only_ciphertext_and_the_key_id(
    page: Any, browser_server: Any, alice: User, alice_company: Customer
) -> None:
    _sign_in(page, alice, browser_server.url)
    posted: list[str] = []
    csp_errors: list[str] = []
    page.on("request", lambda r: posted.append(r.post_data or "") if r.method == "POST" else None)
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )

    page.goto(f"{browser_server.url}/portal/cards/")
    page.fill("#card-number", "4111 1111 1111 1111")
    page.fill("#card-expiry", "12/39")
    page.fill("#card-cvc", CVC)
    with page.expect_navigation():
        page.click("#card-entry button[type=submit]")

    assert len(posted) == 1
    body = posted[0]
    fields = parse_qs(body)
    assert set(fields) == {"csrfmiddlewaretoken", "card_payload"}
    assert VISA not in body and "4111+1111" not in body and "4111%201111" not in body
    assert CVC not in fields["card_payload"][0].split(".")[:2]
    assert all(value != CVC for values in fields.values() for value in values)
    assert fields["card_payload"][0].startswith("v1.ek_")
    assert "Visa •••• 1111" in page.content()
    assert VISA not in page.content()
    method = PaymentMethod.objects.get(customer=alice_company)
    assert (method.last4, method.expiry) == ("1111", "12/39")
    assert not csp_errors


def test_a_bad_number_comes_back_as_an_error_on_the_number_field(
    page: Any, browser_server: Any, alice: User
) -> None:
    _sign_in(page, alice, browser_server.url)
    page.goto(f"{browser_server.url}/portal/cards/")
    page.fill("#card-number", "4111 1111 1111 1112")
    page.fill("#card-expiry", "12/39")
    page.fill("#card-cvc", CVC)
    with page.expect_navigation():
        page.click("#card-entry button[type=submit]")

    # Alice reads Swedish: "the card number is not valid (check digit)".
    assert "kontrollsiffran stämmer inte" in page.text_content("#error-number")
    assert "4111 1111 1111 1112" not in page.content()
    assert not PaymentMethod.objects.exists()
