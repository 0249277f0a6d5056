"""The staff workbench in Chromium at 1366x900, one journey per role, on the seeded demo.

Each role signs in (a verified session handed to the browser), lands on its dashboard and
walks to the pages it works in; every page fits the screen (no sideways scrolling), loads
nothing that fails, and is saved as a screenshot under var/screenshots/staff/<role>/.
The clerk's journey types a line and reads the live totals, finalizes a draft through its
confirmation (which names the number) and credits part of an invoice by amount.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from billing.models import Invoice
from billing.money import Money
from payments.fraud.models import FraudModelVersion
from payments.models import BankLine, Payment
from security.models import User
from tests.browser.conftest import SCREENSHOTS, VIEWPORTS, no_sideways_scroll, requires_chromium
from tests.factories import ensure_default_series
from tests.mfa_helpers import give_totp_device, mark_client_verified

pytestmark = [requires_chromium, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _demo(demo_settings: None, settings: Any) -> None:
    settings.DOCUMENTS_ON_FINALIZE = "off"


@pytest.fixture
def demo(transactional_db: None) -> None:
    ensure_default_series()  # a transactional test's flush takes the migrations' rows away
    call_command("seed_demo", stdout=io.StringIO())


@dataclass
class StaffWalk:
    page: Any
    base: str
    folder: Path
    problems: list[str] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.page.on(
            "response",
            lambda r: self.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )

    def go(self, path: str, name: str) -> None:
        self.page.goto(f"{self.base}{path}")
        self.check(name)

    def check(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=self.folder / f"{self.count:02d}-{name}.png", full_page=True)
        if not no_sideways_scroll(self.page):
            self.problems.append(f"{name}: wider than 1366 pixels")
        # A list's table scrolls inside its own box: its columns must fit that box too.
        hidden = self.page.locator(".results").evaluate_all(
            "boxes => boxes.filter(b => b.scrollWidth > b.clientWidth).length"
        )
        if hidden:
            self.problems.append(f"{name}: the list's columns do not fit")


def _walk(browser: Any, server: Any, username: str) -> StaffWalk:
    user = User.objects.get(username=username)
    client = Client()
    client.force_login(user)
    mark_client_verified(client, give_totp_device(user))
    context = browser.new_context(viewport=VIEWPORTS["desktop"], locale="en-GB")
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": server.url,
            }
        ]
    )
    return StaffWalk(context.new_page(), server.url, SCREENSHOTS / "staff" / username)


def _admin(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def test_the_clerk_finalizes_a_draft_and_credits_part_of_an_invoice(
    browser: Any, browser_server: Any, demo: None
) -> None:
    walk = _walk(browser, browser_server, "clerk")
    page = walk.page
    draft = Invoice.objects.filter(status="draft").order_by("pk").first()
    open_one = Invoice.objects.filter(status="open", kind="invoice", amount_paid=0).first()
    assert draft is not None and open_one is not None

    walk.go(_admin("index"), "dashboard")
    assert page.locator("#panel-clerk").is_visible()
    walk.go(_admin("billing_invoice_changelist"), "invoices")
    walk.go(_admin("billing_invoice_change", draft.pk), "draft")
    first = draft.lines.order_by("position", "pk").first()
    assert first is not None
    page.fill("#id_lines-0-quantity", "3")
    gross = Money(round(first.unit_price * 3 * Decimal("1.25") * 100), "SEK")
    # The CSP allows no eval: wait on the element, not on a script.
    expect(page.locator("#live-gross")).to_have_text(str(gross))
    walk.check("draft-live-totals")
    page.click("#action-finalize")
    number = page.locator("#number-to-take").inner_text()
    walk.check("finalize-confirm")
    page.click("#confirm-finalize")
    draft.refresh_from_db()
    assert draft.display_number in number
    assert f"Invoice {draft.display_number} finalized" in page.locator(".messagelist").inner_text()
    walk.check("finalized")

    walk.go(_admin("billing_invoice_credit", open_one.pk), "credit-form")
    page.check("input[name=mode][value=amount]")
    page.fill("#id_amount", "100")
    page.fill("#id_reason", "Goodwill")
    page.click("#credit-preview")
    note_number = page.locator("#note-to-take").inner_text()
    walk.check("credit-confirm")
    page.click("#confirm-credit")
    note = Invoice.objects.get(credited_invoice=open_one)
    assert note.display_number in note_number and note.gross_total == 10_000
    walk.check("credited")
    assert walk.problems == []


@pytest.mark.parametrize(
    ("username", "panel", "pages"),
    [
        (
            "accountant",
            "accountant",
            [("billing_invoice_changelist",), ("documents_invoicedocument_changelist",)],
        ),
        (
            "payments",
            "operator",
            [
                ("payments_payment_changelist",),
                ("payments_bankline_changelist",),
                ("payments_refund_changelist",),
            ],
        ),
        (
            "fraud",
            "review-queue",
            [
                ("payments_payment_changelist",),
                ("payments_fraudrule_changelist",),
                ("payments_fraudlistentry_changelist",),
                ("payments_fraudmodelversion_changelist",),
                ("payments_riskevaluation_reports",),
            ],
        ),
        (
            "security",
            "governance",
            [
                ("security_user_changelist",),
                ("audit_auditevent_changelist",),
                ("audit_verify_chain",),
                ("payments_datakey_changelist",),
            ],
        ),
        (
            "auditor",
            "governance",
            [
                ("audit_auditcheckpoint_changelist",),
                ("audit_auditevent_changelist",),
                ("payments_bankfile_changelist",),
            ],
        ),
    ],
)
def test_each_role_lands_on_its_dashboard_and_its_pages_fit_the_screen(
    username: str,
    panel: str,
    pages: list[tuple[str]],
    browser: Any,
    browser_server: Any,
    demo: None,
) -> None:
    walk = _walk(browser, browser_server, username)

    walk.go(_admin("index"), "dashboard")
    assert walk.page.locator(f"#panel-{panel}").is_visible()
    for (name,) in pages:
        walk.go(_admin(name), name)
    if username == "fraud":
        held = Payment.objects.awaiting_risk_review().get()
        walk.go(_admin("payments_payment_change", held.pk), "held-payment")
        live = FraudModelVersion.objects.get(live=True)  # the demo's first model
        walk.go(_admin("payments_fraudmodelversion_change", live.pk), "live-model")
    if username == "payments":
        line = BankLine.objects.filter(status="review").first()
        if line is not None:
            walk.go(_admin("payments_bankline_resolve", line.pk), "resolve-line")
    assert walk.problems == []
