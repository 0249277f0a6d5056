"""Invoice PDFs through the API: download the signed PDF (the same selector and audit event
as the portal's download), verify an uploaded PDF (signed by us, untampered, which invoice)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from tests.api.conftest import Api, error_fields
from tests.factories import audit_events

pytestmark = pytest.mark.django_db


def upload(api: Api, data: bytes, name: str = "invoice.pdf") -> Any:
    return api.post(
        "invoices/verify/",
        {"file": SimpleUploadedFile(name, data, content_type="application/pdf")},
        format="multipart",
    )


def test_alice_downloads_her_signed_pdf(alice_api: Api, alice_document: InvoiceDocument) -> None:
    response = alice_api.get(f"invoices/{alice_document.invoice_id}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content == bytes(alice_document.content)
    assert response["X-Content-SHA256"] == hashlib.sha256(response.content).hexdigest()
    assert audit_events("invoice.document_downloaded", alice_document.invoice)


def test_bobs_pdf_is_a_404_for_alice(
    alice_api: Api,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    sign_invoice: Callable[[Invoice], InvoiceDocument],
) -> None:
    bobs = sign_invoice(make_open_invoice(bob_company))

    assert alice_api.get(f"invoices/{bobs.invoice_id}/pdf/").status_code == 404
    assert not audit_events("invoice.document_downloaded")


def test_an_unsigned_invoice_has_no_pdf_yet(
    integration: Api, alice_company: Customer, make_open_invoice: Callable[..., Invoice]
) -> None:
    assert (
        integration.get(f"invoices/{make_open_invoice(alice_company).pk}/pdf/").status_code == 404
    )


def test_verifying_our_pdf_names_the_invoice(
    alice_api: Api, alice_document: InvoiceDocument
) -> None:
    response = upload(alice_api, bytes(alice_document.content))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["outcome"] == "genuine" and body["genuine"] is True
    assert body["signed_by_us"] and body["intact"]
    assert body["invoice"] == alice_document.invoice_id
    assert body["number"] == alice_document.invoice.display_number
    assert audit_events("invoice.document_verified", alice_document.invoice)


def test_a_changed_byte_is_not_genuine(alice_api: Api, alice_document: InvoiceDocument) -> None:
    data = bytearray(alice_document.content)
    at = data.index(b"/Producer") if b"/Producer" in data else len(data) // 2
    data[at + 2] ^= 0x01

    body = upload(alice_api, bytes(data)).json()

    assert body["genuine"] is False
    assert body["outcome"] != "genuine"


def test_bob_verifying_alices_pdf_is_not_told_which_invoice_it_is(
    bob_api: Api, alice_document: InvoiceDocument
) -> None:
    body = upload(bob_api, bytes(alice_document.content)).json()

    assert body["invoice"] is None and body["number"] == ""
    assert alice_document.invoice.display_number not in " ".join(body["sentences"])


@pytest.mark.parametrize(
    ("data", "field"), [(b"", "file"), (b"hello, not a PDF", "file")], ids=["empty", "not-pdf"]
)
def test_a_bad_upload_names_the_file(alice_api: Api, data: bytes, field: str) -> None:
    response = upload(alice_api, data)

    assert response.status_code == 400
    assert field in error_fields(response)


def test_verify_takes_a_multipart_upload_only(alice_api: Api) -> None:
    response = alice_api.post("invoices/verify/", {"file": "JVBERi0="})

    assert response.status_code == 415
