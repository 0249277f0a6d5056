"""Invoice PDFs through the API: download the signed PDF (the same selector and audit event
as the portal's download), verify an uploaded PDF (signed by us, untampered, which invoice)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from tests.api.conftest import Api, error_fields
from tests.factories import audit_events

pytestmark = pytest.mark.django_db


def upload(api: Api, data: bytes) -> Any:
    return api.post("invoices/verify", {"pdf": base64.b64encode(data).decode()})


def test_alice_downloads_her_signed_pdf(alice_api: Api, alice_document: InvoiceDocument) -> None:
    response = alice_api.get(f"invoices/{alice_document.invoice_id}/pdf")

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

    assert alice_api.get(f"invoices/{bobs.invoice_id}/pdf").status_code == 404
    assert not audit_events("invoice.document_downloaded")


def test_an_unsigned_invoice_has_no_pdf_yet(
    erp_api: Api, alice_company: Customer, make_open_invoice: Callable[..., Invoice]
) -> None:
    assert erp_api.get(f"invoices/{make_open_invoice(alice_company).pk}/pdf").status_code == 404


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


@pytest.mark.parametrize("data", [b"", b"hello, not a PDF"], ids=["empty", "not-pdf"])
def test_a_bad_upload_names_the_pdf(alice_api: Api, data: bytes) -> None:
    response = upload(alice_api, data)

    assert response.status_code == 400
    assert "pdf" in error_fields(response)


@pytest.mark.parametrize("body", [{"pdf": "%%% not base64 %%%"}, {"pdf": 12}, {"file": "JVBERi0="}])
def test_a_body_that_is_no_base64_pdf_names_the_field(alice_api: Api, body: dict[str, Any]) -> None:
    response = alice_api.post("invoices/verify", body)

    assert response.status_code == 400
    assert error_fields(response) & {"pdf", "file"}


def test_verify_takes_json_only(alice_api: Api) -> None:
    response = alice_api.post("invoices/verify", b"%PDF-1.7 ...", content_type="application/pdf")

    assert response.status_code == 415
