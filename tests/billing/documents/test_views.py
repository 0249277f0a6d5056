"""The document pages: downloads, the accountant's export, the verification page."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.documents.models import InvoiceDocument
from security.models import User
from tests.factories import audit_events


def _client(user: User) -> Client:
    """A signed-in portal customer (no second factor enrolled) or outsider."""
    assert not user.is_staff, "staff sign in through admin_client_for (MFA)"
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(admin_client_for: Callable[[User], Client]) -> Callable[[User], Client]:
    """Staff sign in with a verified second factor (fresh, so step-up passes)."""
    return admin_client_for


def test_the_accountant_role_holds_the_document_permissions() -> None:
    from security.roles import ACCOUNTANT, ROLES

    assert "documents.download_invoice_documents" in ROLES[ACCOUNTANT]
    assert "documents.verify_invoice_documents" in ROLES[ACCOUNTANT]


def _grant(user: User, codename: str) -> User:
    user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def permitted_accountant(accountant: User) -> User:
    return _grant(accountant, "download_invoice_documents")


def _download(client: Client, document: InvoiceDocument) -> Any:
    return client.get(reverse("documents:download", args=[document.invoice_id]))


@pytest.mark.django_db
def test_alice_downloads_her_signed_pdf_and_it_is_audited(
    alice: User, alice_document: InvoiceDocument
) -> None:
    response = _download(_client(alice), alice_document)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content == bytes(alice_document.content)
    [event] = audit_events("invoice.document_downloaded", alice_document.invoice)
    assert event.details["sha256"] == alice_document.sha256


@pytest.mark.django_db
def test_bob_cannot_fetch_alices_pdf(bob: User, alice_document: InvoiceDocument) -> None:
    assert _download(_client(bob), alice_document).status_code == 404
    assert audit_events("invoice.document_downloaded") == []


@pytest.mark.django_db
def test_staff_without_the_permission_cannot_fetch_a_pdf(
    clerk: User, alice_document: InvoiceDocument, staff_client: Callable[[User], Client]
) -> None:
    assert _download(staff_client(clerk), alice_document).status_code == 404


@pytest.mark.django_db
def test_an_accountant_with_the_permission_fetches_any_pdf(
    permitted_accountant: User,
    alice_document: InvoiceDocument,
    staff_client: Callable[[User], Client],
) -> None:
    assert _download(staff_client(permitted_accountant), alice_document).status_code == 200


@pytest.mark.django_db
def test_staff_without_a_verified_second_factor_is_sent_to_verify(
    permitted_accountant: User, alice_document: InvoiceDocument
) -> None:
    client = Client()
    client.force_login(permitted_accountant)

    response = _download(client, alice_document)

    assert response.status_code == 302
    assert audit_events("invoice.document_downloaded") == []


@pytest.mark.django_db
def test_the_accountant_downloads_a_period_zip(
    permitted_accountant: User,
    alice_document: InvoiceDocument,
    staff_client: Callable[[User], Client],
) -> None:
    today = timezone.localdate().isoformat()

    response = staff_client(permitted_accountant).post(
        reverse("documents:export"), {"start": today, "end": today}
    )

    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert f"documents/{alice_document.filename}" in names
    assert "manifest.json.p7s" in names
    assert len(audit_events("invoice.documents_exported")) == 1


@pytest.mark.django_db
def test_the_export_refuses_a_customer_and_a_bad_period(
    alice: User, permitted_accountant: User, staff_client: Callable[[User], Client]
) -> None:
    assert _client(alice).get(reverse("documents:export")).status_code == 403
    response = staff_client(permitted_accountant).post(
        reverse("documents:export"), {"start": "2026-02-01", "end": "2026-01-01"}
    )
    assert response.status_code == 400
    assert b"end: " in response.content


@pytest.mark.django_db
def test_an_export_with_unsigned_invoices_renders_nothing_in_the_request_and_says_so(
    permitted_accountant: User,
    alice_document: InvoiceDocument,
    make_open_invoice: Callable[..., Any],
    alice_company: Any,
    staff_client: Callable[[User], Client],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DOCUMENTS_ON_FINALIZE = "sync"  # the job runs inline once the request commits
    make_open_invoice(alice_company)
    client = staff_client(permitted_accountant)
    today = timezone.localdate().isoformat()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("documents:export"), {"start": today, "end": today})

    assert response.status_code == 202
    assert response["Content-Type"].startswith("text/html")
    assert b"1 invoice of this period has no signed PDF yet" in b" ".join(response.content.split())
    assert InvoiceDocument.objects.count() == 1  # the request signed nothing
    assert audit_events("invoice.documents_exported") == []
    assert len(audit_events("invoice.documents_signing_queued")) == 1

    for callback in callbacks:  # the job, as the worker would run it
        callback()
    response = client.post(reverse("documents:export"), {"start": today, "end": today})

    assert response.status_code == 200
    manifest = zipfile.ZipFile(io.BytesIO(response.content)).read("manifest.json")
    assert manifest.count(b'"sha256"') == 2
    assert len(audit_events("invoice.documents_exported")) == 1


def _verify(client: Client, data: bytes, name: str = "invoice.pdf") -> Any:
    upload = SimpleUploadedFile(name, data, content_type="application/pdf")
    return client.post(reverse("documents:verify"), {"pdf": upload})


@pytest.mark.django_db
def test_the_page_tells_alice_her_pdf_is_genuine(
    alice: User, alice_document: InvoiceDocument
) -> None:
    response = _verify(_client(alice), bytes(alice_document.content))

    assert response.status_code == 200
    assert "Äkta: det här är vårt dokument, oförändrat." in response.content.decode()
    assert alice_document.invoice.display_number.encode() in response.content
    [event] = audit_events("invoice.document_verified", alice_document.invoice)
    assert event.details["outcome"] == "genuine"


@pytest.mark.django_db
def test_the_page_says_a_modified_pdf_was_modified(
    permitted_accountant: User,
    alice_document: InvoiceDocument,
    staff_client: Callable[[User], Client],
) -> None:
    data = bytearray(alice_document.content)
    data[len(data) // 3] ^= 0x01

    response = _verify(staff_client(permitted_accountant), bytes(data))

    assert b"Not confirmed" in response.content
    assert b"MODIFIED" in response.content or b"damaged" in response.content


@pytest.mark.django_db
def test_bob_learns_nothing_about_alices_invoice_from_the_page(
    bob: User, alice_document: InvoiceDocument
) -> None:
    response = _verify(_client(bob), bytes(alice_document.content))

    assert alice_document.invoice.display_number.encode() not in response.content
    assert b"does not match any invoice you have access to" in response.content


@pytest.mark.django_db
def test_a_non_pdf_upload_gets_an_error_naming_the_field(alice: User) -> None:
    response = _verify(_client(alice), b"MZ\x90\x00 an executable", name="invoice.pdf")

    assert response.status_code == 400
    assert "pdf: det här är ingen PDF-fil" in response.content.decode()


@pytest.mark.django_db
def test_a_huge_upload_is_refused(alice: User, settings: Any) -> None:
    settings.DOCUMENTS_MAX_UPLOAD_BYTES = 1024

    response = _verify(_client(alice), b"%PDF-1.7\n" + b"0" * 200_000)

    assert response.status_code == 400
    assert "pdf: filen är större än gränsen på 1 KiB" in response.content.decode()


@pytest.mark.django_db
def test_outsiders_and_unpermitted_staff_cannot_use_the_page(
    outsider: User, clerk: User, staff_client: Callable[[User], Client]
) -> None:
    assert _client(outsider).get(reverse("documents:verify")).status_code == 403
    assert staff_client(clerk).get(reverse("documents:verify")).status_code == 403
    assert Client().get(reverse("documents:verify")).status_code == 302
