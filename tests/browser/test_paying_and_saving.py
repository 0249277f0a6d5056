"""Paying without surprises, in Debian's Chromium: Alice pays one invoice with a new card
and the save box left unticked (no card is kept), a second one with the box ticked (the
card is kept), and a third with that saved card. While a payment is on its way the Pay
button is disabled and says so. The pay page lists the sandbox's test cards.

Screenshots go to var/screenshots/ (CI keeps them as artefacts).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.conf import settings as django_settings
from django.test import Client

from billing.models import Customer, Invoice
from payments.models import Payment, PaymentMethod
from payments.selectors import saved_cards_for_user
from security.keyring import forget_cached_keyrings
from security.models import User
from tests.browser.conftest import requires_chromium
from tests.factories import ensure_default_series, line
from tests.mfa_helpers import give_totp_device, mark_client_verified

pytestmark = [requires_chromium, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(autouse=True)
def vault_keyring(settings: Any, tmp_path: Path) -> Any:
    settings.VAULT_KEYRING_FILE = tmp_path / "vault_keyring.json"
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048
    forget_cached_keyrings()
    yield
    forget_cached_keyrings()


def _signed_in_page(browser: Any, user: User, base_url: str) -> Any:
    """A desktop page whose session has verified Alice's second factor (she may save cards)."""
    client = Client()
    client.force_login(user)
    mark_client_verified(client, give_totp_device(user))
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": base_url,
            }
        ]
    )
    return context.new_page()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"paying-{name}.png"), full_page=True)


# Installed through the DevTools protocol (the page's CSP stays on): remembers, in the
# tab's sessionStorage (which outlives the navigation), what the button showed once the
# form was submitted.
_WATCH_BUTTON = """(form) => {
  const button = document.querySelector(form + " button[type=submit]");
  new MutationObserver(() => {
    if (button.disabled) {
      sessionStorage.setItem("seen", JSON.stringify([button.disabled, button.textContent]));
    }
  }).observe(button, {attributes: true, childList: true, characterData: true, subtree: true});
}"""


def _submit_and_watch(page: Any, form: str) -> tuple[bool, str, str]:
    """Click the form's Pay button and follow the payment to its page. Returns whether the
    button was disabled while the payment was on its way, its label then, and the POST."""
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.post_data or "") if r.method == "POST" else None)
    page.evaluate("() => sessionStorage.removeItem('seen')")
    page.evaluate(_WATCH_BUTTON, form)
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")
    seen = page.evaluate("() => sessionStorage.getItem('seen')")
    assert seen, "the button never showed that the payment was on its way"
    disabled, label = json.loads(seen)
    return bool(disabled), str(label), posts[-1]


def _type_card(page: Any) -> None:
    page.fill("#card-number", "4242 4242 4242 4242")
    page.fill("#card-expiry", "12/39")
    page.fill("#card-cvc", "123")


def test_paying_with_and_without_saving_the_card(
    browser: Any,
    browser_server: Any,
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    ensure_default_series()
    first, second, third = (
        make_open_invoice(alice_company, [line(f"Licence {n}", "1", "800")]) for n in (1, 2, 3)
    )
    page = _signed_in_page(browser, alice, browser_server.url)
    base = browser_server.url

    # 1. A new card, the save box left as it is (unticked): paid, nothing kept.
    page.goto(f"{base}/portal/invoices/{first.pk}/pay/")
    assert page.is_visible("#test-cards") and "4000 0000 0000 0002" in page.inner_text(
        "#test-cards"
    )
    assert not page.is_checked("#keep-card") and page.is_visible("#card-rule")
    _shot(page, "pay-page")
    _type_card(page)
    disabled, label, body = _submit_and_watch(page, "#card-entry")
    assert disabled and label != "Pay" and label != "Betala"
    assert "keep_card" not in parse_qs(body) and "4242" not in body
    assert "/portal/payments/" in page.url
    assert Payment.objects.get(invoice=first).status == Payment.Status.SUCCEEDED
    assert not saved_cards_for_user(alice).exists()
    page.goto(f"{base}/portal/cards/")
    assert "4242" not in page.inner_text("main")
    _shot(page, "cards-after-not-saving")

    # 2. A new card with the box ticked: paid, and the card is kept.
    page.goto(f"{base}/portal/invoices/{second.pk}/pay/")
    _type_card(page)
    page.check("#keep-card")
    _disabled, _label, body = _submit_and_watch(page, "#card-entry")
    assert parse_qs(body).get("keep_card") == ["on"]
    [kept] = saved_cards_for_user(alice)
    assert kept.last4 == "4242"
    page.goto(f"{base}/portal/cards/")
    assert "4242" in page.inner_text("#saved-cards")
    _shot(page, "cards-after-saving")

    # 3. The saved card, from the same page: the other form shows it is working too.
    page.goto(f"{base}/portal/invoices/{third.pk}/pay/")
    disabled, label, _body = _submit_and_watch(page, "#pay-saved")
    assert disabled and label not in ("Pay", "Betala")
    assert Payment.objects.get(invoice=third).payment_method_id == kept.pk
    assert PaymentMethod.objects.filter(status="active").count() == 1
    page.context.close()
