"""Every page a customer can reach, in Chromium on a laptop (1366x900) and a phone (390x844).

Alice (her company reads Swedish) signs in with her password and an authenticator code
and walks through every portal, account and error page; a visitor walks through the
signed-out pages. On each page: the portal's layout (and, signed in, its navigation),
no sideways scrolling, no accessibility violation of any impact by axe-core, no answer
of 400 or above for anything the page loads, and a screenshot in
var/screenshots/customer-pages/<viewport>/ (kept as a CI artefact).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from billing.models import Customer, Invoice
from payments.models import Payment
from payments.services import pay_invoice
from security.keyring import forget_cached_keyrings
from security.models import User
from tests.browser.conftest import (
    SCREENSHOTS,
    VIEWPORTS,
    axe_violations,
    no_sideways_scroll,
    requires_axe,
    requires_chromium,
)
from tests.factories import ensure_default_series, line
from tests.mfa_helpers import give_totp_device, totp_code
from tests.payments.fixtures import APPROVED, key, sek
from tests.payments.test_refund_purposes import fresh_step_up, operator

pytestmark = [requires_chromium, requires_axe, pytest.mark.django_db(transaction=True)]
refunding_operator = operator
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def vault_keyring(settings: Any, tmp_path: Path) -> Iterator[None]:
    settings.VAULT_KEYRING_FILE = tmp_path / "vault_keyring.json"
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048
    forget_cached_keyrings()
    yield
    forget_cached_keyrings()


@dataclass
class Walk:
    """Visits pages in one browser page and checks each the same way."""

    page: Any
    base: str
    folder: Path
    problems: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.page.on(
            "response",
            lambda r: (
                self.failed_loads.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.request.resource_type != "document"
                else None
            ),
        )

    def go(self, path: str, name: str, *, status: int = 200, nav: bool = True) -> None:
        answer = self.page.goto(f"{self.base}{path}")
        assert answer is not None
        if answer.status != status:
            self.problems.append(f"{name}: answered {answer.status}, not {status}")
        self.check(name, nav=nav)

    def check(self, name: str, *, nav: bool = True) -> None:
        """The page now shown: layout, navigation, width, accessibility, a screenshot."""
        page = self.page
        self.seen.append(name)
        page.screenshot(path=self.folder / f"{len(self.seen):02d}-{name}.png", full_page=True)
        if page.locator("header.site-header").count() != 1:
            self.problems.append(f"{name}: not in the portal's layout")
        if (page.locator("nav.main-nav").count() == 1) != nav:
            self.problems.append(f"{name}: navigation {'missing' if nav else 'shown'}")
        if page.locator("link[rel=stylesheet]").count() != 1:
            self.problems.append(f"{name}: no stylesheet")
        if page.evaluate("document.documentElement.lang") != "sv":
            self.problems.append(f"{name}: not in Swedish")
        if not no_sideways_scroll(page):
            self.problems.append(f"{name}: scrolls sideways")
        self.problems.extend(f"{name}: {v}" for v in axe_violations(page))

    def submit(self, selector: str) -> None:
        with self.page.expect_navigation():
            self.page.click(selector)


@pytest.fixture
def alices_things(
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    refunding_operator: User,
) -> dict[str, Any]:
    """An open invoice, a paid one (with its payment and a refund with a credit note) and a
    saved card, all Alice's."""
    from payments.models import Refund
    from payments.services import refund_payment
    from payments.vault.cards import Card
    from payments.vault.services import tokenize

    ensure_default_series()
    open_invoice = make_open_invoice(
        alice_company, [line("Annual licence <b>bold</b>", "1", "800")]
    )
    paid_invoice = make_open_invoice(alice_company, [line("Support", "2", "400")])
    card = tokenize(
        Card.from_input(number=APPROVED, expiry="12/39", cvc="123"),
        customer=alice_company,
        by=alice,
    )
    payment: Payment = pay_invoice(
        paid_invoice,
        amount=sek(1000),
        payment_method=card.pk,
        idempotency_key=key(1),
        by=alice,
        request=None,
    )
    refund_payment(
        payment,
        amount=sek(100),
        reason="one seat returned",
        purpose="credit_note",
        by=refunding_operator,
        request=fresh_step_up(refunding_operator),
    )
    return {
        "open": open_invoice,
        "paid": paid_invoice,
        "card": card,
        "payment": payment,
        "refund": Refund.objects.get(),
    }


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_every_page_a_signed_in_customer_reaches(
    browser: Any,
    browser_server: Any,
    alice: User,
    alices_things: dict[str, Any],
    viewport: str,
) -> None:
    device = give_totp_device(alice)
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="sv-SE")
    walk = Walk(context.new_page(), browser_server.url, SCREENSHOTS / "customer-pages" / viewport)
    invoice, paid, card, payment = (alices_things[k] for k in ("open", "paid", "card", "payment"))

    walk.go("/", "sign-in", nav=False)
    walk.page.fill("input[name=username]", alice.email)
    walk.page.fill("input[name=password]", PASSWORD)
    walk.submit("form[action='/account/login/'] button[type=submit]")
    walk.check("second-factor", nav=False)
    walk.page.fill("input[name=code]", totp_code(device))
    walk.submit("main form button[type=submit]")
    assert walk.page.url == f"{browser_server.url}{reverse('portal:invoices')}"
    walk.check("invoices")

    for path, name, status in [
        (reverse("portal:invoice", args=[invoice.pk]), "invoice", 200),
        (reverse("portal_pay:pay", args=[invoice.pk]), "pay", 200),
        (reverse("portal_pay:payment", args=[payment.pk]), "payment", 200),
        (reverse("portal:receipt", args=[paid.pk]), "receipt", 200),
        (reverse("portal_pay:refund", args=[alices_things["refund"].pk]), "refund", 200),
        (reverse("portal_pay:cards"), "cards", 200),
        (reverse("portal_pay:delete_card", args=[card.pk]), "delete-card", 200),
        (reverse("portal:account"), "account", 200),
        (reverse("security:account"), "sign-in-and-sessions", 200),
        (reverse("security:enroll_totp"), "add-authenticator", 200),
        (reverse("security:password_change"), "change-password", 200),
        (reverse("security:step_up"), "step-up", 200),
        (reverse("portal_pay:security"), "how-we-protect", 200),
        (reverse("documents:verify"), "verify-pdf", 200),
        ("/account/unlock/", "error-403", 403),
        ("/account/verify/?next=https://evil.example/", "error-400", 400),
        ("/portal/invoices/999999/", "error-404", 404),
    ]:
        walk.go(path, name, status=status)
    walk.page.goto(f"{browser_server.url}{reverse('portal:invoice', args=[invoice.pk])}")
    assert "Annual licence <b>bold</b>" in walk.page.inner_text("main")

    walk.submit("form.signout button")
    walk.check("signed-out", nav=False)
    context.close()
    assert walk.problems == []
    assert walk.failed_loads == []


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_every_page_a_signed_out_visitor_reaches(
    browser: Any, browser_server: Any, alice: User, viewport: str
) -> None:
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="sv-SE")
    walk = Walk(context.new_page(), browser_server.url, SCREENSHOTS / "signed-out-pages" / viewport)

    walk.go(reverse("security:password_reset"), "reset-password", nav=False)
    walk.page.fill("input[name=email]", alice.email)
    walk.submit("main form button[type=submit]")
    walk.check("reset-sent", nav=False)
    walk.go("/account/password/reset/MQ/not-a-token/", "reset-link-invalid", nav=False)
    walk.go("/account/login/?next=//evil.example/", "sign-in-tampered-link", nav=False)
    walk.go("/no-such-page/", "error-404", status=404, nav=False)

    walk.page.goto(f"{browser_server.url}{reverse('security:login')}")
    for attempt in range(10):
        walk.page.fill("input[name=username]", alice.email)
        walk.page.fill("input[name=password]", f"wrong password {attempt}")
        walk.submit("form[action='/account/login/'] button[type=submit]")
    assert "spärrad" in walk.page.inner_text("h1")
    walk.check("locked-out", nav=False)

    walk.go(reverse("security:login"), "sign-in", nav=False)
    walk.submit("form.language-switch button[value=en]")
    assert walk.page.inner_text("h1") == "Sign in"
    assert re.search(r"/account/login/$", walk.page.url)

    context.close()
    assert walk.problems == []
    assert walk.failed_loads == []


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_header_fits_a_375_px_phone_in_two_rows(
    browser: Any, browser_server: Any, alice: User, alice_company: Customer, language: str
) -> None:
    from billing import services

    services.set_customer_language(alice_company, language=language, by=alice)
    context = browser.new_context(viewport={"width": 375, "height": 700})
    page = context.new_page()
    page.goto(f"{browser_server.url}{reverse('security:login')}")
    page.fill("input[name=username]", alice.email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/account/login/'] button[type=submit]")

    def rows(selector: str) -> set[int]:
        script = "s => [...document.querySelectorAll(s)].map(e => e.getBoundingClientRect().top)"
        return {round(top) for top in page.evaluate(script, selector)}

    brand_row, nav_row, tool_row = rows(".brand"), rows(".nav a"), rows(".header-tools button")
    assert page.evaluate("document.documentElement.lang") == language
    assert len(nav_row) == 1 and len(tool_row) == 1  # each on one row
    assert min(nav_row) > max(brand_row | tool_row)  # the navigation is the second row
    assert page.locator(".site-header").bounding_box()["height"] < 110  # and nothing more
    assert no_sideways_scroll(page)
    context.close()
