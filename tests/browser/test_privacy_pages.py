"""The privacy page in Chromium, laptop and phone: Alice (Swedish) reads the policy and
accepts it, asks for her data export, downloads it once through the emailed link, and
the used link then refuses. Layout, width, accessibility (axe) and screenshots in
var/screenshots/privacy-pages/<viewport>/, as for every customer page."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from billing.models import Customer, Invoice
from billing.privacy.models import DataExport
from billing.privacy.services import build_data_export
from security.keyring import forget_cached_keyrings
from security.models import User
from tests.browser.conftest import SCREENSHOTS, VIEWPORTS, requires_axe, requires_chromium
from tests.browser.test_customer_pages import PASSWORD, Walk
from tests.factories import ensure_default_series, line
from tests.mfa_helpers import give_totp_device, totp_code

pytestmark = [requires_chromium, requires_axe, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def vault_keyring(settings: Any, tmp_path: Path) -> Iterator[None]:
    settings.VAULT_KEYRING_FILE = tmp_path / "vault_keyring.json"
    settings.VAULT_KEYRING_CREATE = True
    forget_cached_keyrings()
    yield
    forget_cached_keyrings()


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_privacy_page_policy_and_a_one_time_export(
    browser: Any,
    browser_server: Any,
    alice: User,
    alice_company: Customer,
    make_open_invoice: Any,
    viewport: str,
    tmp_path: Path,
) -> None:
    ensure_default_series()
    invoice: Invoice = make_open_invoice(alice_company, [line("Årlig licens", "1", "800")])
    device = give_totp_device(alice)
    context = browser.new_context(
        viewport=VIEWPORTS[viewport], locale="sv-SE", accept_downloads=True
    )
    walk = Walk(context.new_page(), browser_server.url, SCREENSHOTS / "privacy-pages" / viewport)
    walk.page.goto(f"{browser_server.url}/account/login/")
    walk.page.fill("input[name=username]", alice.email)
    walk.page.fill("input[name=password]", PASSWORD)
    walk.submit("form[action='/account/login/'] button[type=submit]")
    walk.page.fill("input[name=code]", totp_code(device))
    walk.submit("main form button[type=submit]")

    walk.go("/portal/privacy/", "privacy")
    assert "inte godkänt" in walk.page.inner_text("#accepted-version")
    walk.submit("#policy button[type=submit]")
    assert "Du godkände version 2026-1" in walk.page.inner_text("#accepted-version")
    walk.check("privacy-accepted")

    walk.submit("#export button[type=submit]")
    assert "förbereds" in walk.page.inner_text("#export-status")
    walk.check("export-requested")
    build_data_export(DataExport.objects.get().pk)  # what the job does
    [message] = [m for m in mail.outbox if "/portal/privacy/export/" in str(m.body)]
    link = re.search(r"/portal/privacy/export/\S+/", str(message.body))
    assert link
    walk.go("/portal/privacy/", "export-ready")

    with walk.page.expect_download() as download:
        walk.page.evaluate("url => { window.location.href = url; }", link.group(0))
    saved = tmp_path / "export.zip"
    download.value.save_as(saved)
    names = zipfile.ZipFile(saved).namelist()
    assert "data.json" in names
    assert invoice.display_number in zipfile.ZipFile(saved).read("data.json").decode()

    walk.go(link.group(0), "export-link-used", status=404)
    assert "redan använd" in walk.page.inner_text("#link-error")
    context.close()
    assert walk.problems == [], "\n".join(walk.problems)
    assert walk.failed_loads == []
