"""The security officer's governance pages in Chromium: an incident with its timeline and
containment page, and a quarterly review with its server-drawn charts (screenshots in
var/screenshots/governance/)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from audit import SYSTEM
from audit.incidents import services as incidents
from audit.reviews import services as reviews
from security.models import User
from tests.audit.governance import governance_keys  # noqa: F401 - the keys outside the database
from tests.browser.conftest import SCREENSHOTS, requires_chromium
from tests.factories import make_user
from tests.mfa_helpers import give_totp_device, totp_code

pytestmark = [requires_chromium, pytest.mark.usefixtures("governance_keys")]
PASSWORD = "correct horse battery staple"
SHOTS = SCREENSHOTS / "governance"


def _generated_review(officer: User) -> Any:
    """The review, generated in a thread of its own: pyHanko signs with asyncio.run, which
    Playwright's event loop in this thread refuses."""
    from django.db import connection

    made: list[Any] = []

    def generate() -> None:
        today = dt.date.today()
        try:
            made.append(
                reviews.generate_review(
                    period_start=today - dt.timedelta(days=30),
                    period_end=today,
                    by=officer,
                    scanners=False,
                )
            )
        finally:
            connection.close()

    worker = threading.Thread(target=generate)
    worker.start()
    worker.join()
    (review,) = made
    return review


def test_an_officer_reads_an_incident_and_a_review_in_chromium(
    browser: Any, browser_server: Any
) -> None:
    officer = make_user("sofia", is_staff=True)
    officer.groups.add(Group.objects.get(name="Security officer"))
    officer = User.objects.get(pk=officer.pk)
    device = give_totp_device(officer)
    incident, _ = incidents.open_incident(
        title="Spike of login lockouts",
        kind="account_takeover",
        severity="high",
        summary="42 lockouts in the last hour (threshold 5).",
        detector_key="lockout_spike",
        by=SYSTEM,
    )
    incidents.change_incident_status(
        incident, to="triaged", note="Credential stuffing from one network.", by=officer
    )
    review = _generated_review(officer)

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{browser_server.url}/admin/")
    page.fill("input[name=username]", "sofia")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/account/login/'] button[type=submit]")
    page.fill("input[name=code]", totp_code(device))
    with page.expect_navigation():
        page.click("main form button[type=submit]")

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{browser_server.url}{reverse('admin:audit_incident_change', args=[incident.pk])}")
    assert "Spike of login lockouts" in page.content()
    assert page.locator("text=Credential stuffing from one network.").count() == 1
    page.screenshot(path=str(SHOTS / "incident.png"), full_page=True)
    page.goto(
        f"{browser_server.url}{reverse('admin:audit_incident_containment', args=[incident.pk])}"
    )
    assert page.locator("#containment-form select[name=action]").count() == 1
    page.screenshot(path=str(SHOTS / "containment.png"), full_page=True)

    page.goto(
        f"{browser_server.url}{reverse('admin:audit_securityreview_change', args=[review.pk])}"
    )
    charts = page.locator(".chart img")
    assert charts.count() == 4
    for n in range(4):  # drawn: the CSP let the data: SVG in, and it has a size
        assert charts.nth(n).evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator("#pci").count() == 1
    # The accounts are one cell per row, their fields in columns (staff/review.css).
    first_account = page.locator("table.accounts tbody td").first
    assert first_account.evaluate("td => getComputedStyle(td).whiteSpace") == "pre-wrap"
    page.screenshot(path=str(SHOTS / "review.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
