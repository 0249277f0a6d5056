"""Data export: asked for with a fresh second factor, built by the job, downloaded once
through an emailed link that expires; exactly the customer's data, nobody else's."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from billing.models import Customer, Invoice
from billing.privacy.models import DataExport
from billing.privacy.services import build_data_export
from security.models import User
from tests.billing.privacy.conftest import ASTRID
from tests.factories import audit_events, line
from tests.mfa_helpers import give_totp_device, mark_client_verified

pytestmark = pytest.mark.django_db


def ask_and_build(client: Client, capture: Any) -> str:
    """Ask for an export on the privacy page, run the job; the link from the email."""
    with capture(execute=True):
        response = client.post("/portal/privacy/export/")
    assert response.status_code == 302
    export = DataExport.objects.latest("requested_at")
    with capture(execute=True):
        build_data_export(export.pk)
    [message] = [m for m in mail.outbox if "export" in m.subject.lower() or "export" in m.body]
    match = re.search(r"https?://\S+/portal/privacy/export/(\S+)/", str(message.body))
    assert match
    return f"/portal/privacy/export/{match.group(1)}/"


def test_export_holds_exactly_her_data_and_works_once(
    astrid: User,
    astrid_client: Client,
    astrid_customer: Customer,
    astrid_invoices: list[Invoice],
    astrid_card: Any,
    bob_company: Customer,
    make_open_invoice: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    make_open_invoice(bob_company, [line("Bob's secret order", "1", "987654.31")])
    link = ask_and_build(astrid_client, django_capture_on_commit_callbacks)

    response = astrid_client.get(link)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    data = json.loads(archive.read("data.json"))
    assert data["customer"]["name"] == ASTRID["name"]
    assert data["customer"]["email"] == ASTRID["email"]
    assert sorted(i["number"] for i in data["invoices"]) == sorted(
        i.display_number for i in astrid_invoices
    )
    assert [u["username"] for u in data["portal_users"]] == ["astrid.v"]
    assert data["payments"]["saved_cards"][0]["last4"] == "1111"
    text = archive.read("data.json").decode()
    # Bob's marks (his name, his line, his amount in either unit), never a timestamp's digits
    assert "Bob" not in text and "987654" not in text and "98765431" not in text
    assert "4111111111111111" not in text
    export = DataExport.objects.get()
    assert export.status == DataExport.Status.DOWNLOADED
    assert export.content is None
    assert audit_events("privacy.export_downloaded", astrid_customer)

    again = astrid_client.get(link)
    assert again.status_code == 404
    assert "used or has expired" in again.content.decode()


def test_another_customers_link_is_refused(
    astrid_client: Client,
    astrid_invoices: list[Invoice],
    bob: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    link = ask_and_build(astrid_client, django_capture_on_commit_callbacks)
    bob_client = Client()
    bob_client.force_login(bob)
    mark_client_verified(bob_client, give_totp_device(bob))

    response = bob_client.get(link)

    assert response.status_code == 404
    assert DataExport.objects.get().status == DataExport.Status.READY
    assert b"PK" not in response.content[:2]


def test_an_expired_link_is_refused_and_the_file_erased(
    astrid_client: Client, astrid_invoices: list[Invoice], django_capture_on_commit_callbacks: Any
) -> None:
    link = ask_and_build(astrid_client, django_capture_on_commit_callbacks)
    # The link's hours passed (the session's idle limit would end a real day's wait).
    DataExport.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = astrid_client.get(link)
    assert response.status_code == 404
    assert "expired" in response.content.decode()
    export = DataExport.objects.get()
    assert export.status == DataExport.Status.EXPIRED
    assert export.content is None


def test_downloading_needs_a_fresh_second_factor(
    astrid_client: Client, astrid_invoices: list[Invoice], django_capture_on_commit_callbacks: Any
) -> None:
    from security.selectors import MFA_VERIFIED_AT_KEY

    link = ask_and_build(astrid_client, django_capture_on_commit_callbacks)
    session = astrid_client.session
    session[MFA_VERIFIED_AT_KEY] = 0
    session.save()

    response = astrid_client.get(link)

    assert response.status_code == 302
    assert response["Location"].startswith("/account/")
    assert DataExport.objects.get().status == DataExport.Status.READY


def test_no_export_without_a_second_factor(astrid: User, astrid_customer: Customer) -> None:
    client = Client()
    client.force_login(astrid)  # no device enrolled
    page = client.get("/portal/privacy/")
    assert 'id="export-needs-mfa"' in page.content.decode()

    response = client.post("/portal/privacy/export/", follow=True)

    assert "two-step sign-in" in response.content.decode()
    assert not DataExport.objects.exists()


def test_staff_and_outsiders_do_not_reach_the_privacy_pages(clerk: User, outsider: User) -> None:
    for user in (clerk, outsider):
        client = Client()
        client.force_login(user)
        mark_client_verified(client, give_totp_device(user))
        assert client.get("/portal/privacy/").status_code == 404
        assert client.post("/portal/privacy/export/").status_code == 404
    assert Client().get("/portal/privacy/").status_code == 302  # to the sign-in page


def test_a_failed_build_is_recorded_and_a_new_request_is_possible(
    astrid: User,
    astrid_client: Client,
    astrid_customer: Customer,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from billing.privacy.tasks import build_data_export_job

    with django_capture_on_commit_callbacks(execute=True):
        astrid_client.post("/portal/privacy/export/")
    export = DataExport.objects.get()
    settings.PRIVACY_EXPORT_LINK_HOURS = "not a number"  # the job breaks while building

    with pytest.raises(TypeError):
        build_data_export_job(export.pk)

    export.refresh_from_db()
    assert export.status == DataExport.Status.FAILED
    assert audit_events("privacy.export_failed", astrid_customer)
    settings.PRIVACY_EXPORT_LINK_HOURS = 24
    with django_capture_on_commit_callbacks(execute=True):
        astrid_client.post("/portal/privacy/export/")
    assert DataExport.objects.filter(status=DataExport.Status.PENDING).count() == 1
