"""The portal in Debian's Chromium, on a desktop (1366x900) and a phone (390x844).

Alice signs in with her password and a TOTP code, opens her invoice, pays it with a
new card through the end-to-end encrypted form, and sees it paid with a receipt.
No page scrolls sideways; axe-core (from the npm registry, node_modules/axe-core)
finds no serious or critical accessibility violation on the portal's pages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from billing.models import Customer, Invoice
from payments.gateways.models import SandboxCharge
from security.keyring import forget_cached_keyrings
from security.models import User
from tests.browser.conftest import (
    VIEWPORTS,
    axe_violations,
    no_sideways_scroll,
    requires_axe,
    requires_chromium,
)
from tests.factories import ensure_default_series, line
from tests.mfa_helpers import give_totp_device, totp_code

pytestmark = [requires_chromium, requires_axe, pytest.mark.django_db(transaction=True)]
CARD = "4242 4242 4242 4242"


@pytest.fixture(autouse=True)
def vault_keyring(settings: Any, tmp_path: Path) -> Any:
    settings.VAULT_KEYRING_FILE = tmp_path / "vault_keyring.json"
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048
    forget_cached_keyrings()
    yield
    forget_cached_keyrings()


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the current page."""
    return [v for v in axe_violations(page) if v.startswith(("serious", "critical"))]


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_alice_signs_in_with_totp_and_pays_with_a_new_card(
    browser: Any,
    browser_server: Any,
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    viewport: str,
) -> None:
    ensure_default_series()
    invoice = make_open_invoice(alice_company, [line("Annual licence <b>bold</b>", "1", "800")])
    device = give_totp_device(alice)
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    checked: dict[str, list[str]] = {}
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.post_data or "") if r.method == "POST" else None)
    base = browser_server.url

    page.goto(f"{base}/")
    page.fill("input[name=username]", alice.email)
    page.fill("input[name=password]", "correct horse battery staple")
    with page.expect_navigation():
        page.click("button:has-text('Continue')")
    page.fill("input[name=code]", totp_code(device))
    with page.expect_navigation():
        page.click("button:has-text('Verify')")

    assert page.url.rstrip("/").endswith("/portal")
    assert no_sideways_scroll(page)
    checked["list"] = serious_violations(page)

    page.click(f"text={invoice.display_number}")
    assert "Annual licence <b>bold</b>" in page.inner_text("main")
    assert no_sideways_scroll(page)
    checked["detail"] = serious_violations(page)

    page.click("a.button")  # Betala med kort
    assert no_sideways_scroll(page)
    checked["pay"] = serious_violations(page)
    page.fill("#card-number", CARD)
    page.fill("#card-expiry", "12/39")
    page.fill("#card-cvc", "123")
    with page.expect_navigation():
        page.click("#card-entry button[type=submit]")

    assert "/portal/payments/" in page.url
    with page.expect_navigation():
        page.click("a.button")  # the receipt
    assert "/receipt/" in page.url
    assert no_sideways_scroll(page)
    checked["receipt"] = serious_violations(page)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert SandboxCharge.objects.count() == 1
    # Nothing sensitive left the browser in the clear, and no page shows it.
    assert not any("4242424242424242" in body or "4242+4242" in body for body in posts)
    assert "4242 4242 4242 4242" not in page.content()
    assert all(not found for found in checked.values()), checked
    context.close()
