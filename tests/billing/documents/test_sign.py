"""Signing: PAdES by the company certificate, SHA-256 stored and audited, versions kept."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import facturx
import pytest
from django.db import DatabaseError, transaction
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from billing import services as billing_services
from billing.documents import keys, services
from billing.documents.exceptions import RenderError, SigningKeyError
from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from security.models import User
from tests.factories import audit_events


@pytest.mark.django_db
def test_signing_stores_the_pdf_with_its_sha256_and_audits_it(
    alice_document: InvoiceDocument,
) -> None:
    pdf = bytes(alice_document.content)

    assert alice_document.sha256 == hashlib.sha256(pdf).hexdigest()
    assert alice_document.version == 1
    [event] = audit_events("invoice.document_signed", alice_document.invoice)
    assert event.details["sha256"] == alice_document.sha256
    assert event.details["signer_fingerprint"] == keys.load_identity().fingerprint


@pytest.mark.django_db
def test_the_signature_is_pades_by_our_certificate_and_valid(
    alice_document: InvoiceDocument,
) -> None:
    from asn1crypto import pem
    from asn1crypto import x509 as asn1_x509

    _, _, der = pem.unarmor(keys.load_identity().certificate_pem.encode())
    ours = asn1_x509.Certificate.load(der)
    [signature] = PdfFileReader(io.BytesIO(bytes(alice_document.content))).embedded_signatures

    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[ours]))

    assert status.intact and status.valid and status.trusted
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"


@pytest.mark.django_db
def test_factur_x_still_finds_its_xml_in_the_signed_file(alice_document: InvoiceDocument) -> None:
    name, xml = facturx.get_xml_from_pdf(bytes(alice_document.content), check_xsd=True)

    assert name == "factur-x.xml"
    assert alice_document.invoice.display_number.encode() in xml


@pytest.mark.django_db
def test_signing_again_returns_the_first_document_unchanged(
    alice_document: InvoiceDocument, clerk: User
) -> None:
    again = services.sign_invoice_document(alice_document.invoice, by=clerk)

    assert again.pk == alice_document.pk
    assert len(audit_events("invoice.document_signed", alice_document.invoice)) == 1


@pytest.mark.django_db
def test_rerendering_adds_an_audited_version_and_keeps_the_first(
    alice_document: InvoiceDocument, clerk: User
) -> None:
    second = services.rerender_invoice_document(
        alice_document.invoice, by=clerk, reason="New template with larger OCR"
    )

    assert second.version == 2
    assert InvoiceDocument.objects.get(pk=alice_document.pk).sha256 == alice_document.sha256
    events = audit_events("invoice.document_signed", alice_document.invoice)
    assert [e.details["version"] for e in events] == [1, 2]
    assert events[1].details["previous_sha256"] == alice_document.sha256


@pytest.mark.django_db
def test_rerendering_needs_a_reason(alice_document: InvoiceDocument, clerk: User) -> None:
    with pytest.raises(RenderError) as error:
        services.rerender_invoice_document(alice_document.invoice, by=clerk, reason=" ")
    assert error.value.field == "reason"
    assert InvoiceDocument.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_the_database_refuses_to_change_or_delete_a_signed_document(
    alice_document: InvoiceDocument,
) -> None:
    with pytest.raises(DatabaseError), transaction.atomic():
        InvoiceDocument.objects.filter(pk=alice_document.pk).update(sha256="0" * 64)
    with pytest.raises(DatabaseError), transaction.atomic():
        InvoiceDocument.objects.filter(pk=alice_document.pk).delete()


@pytest.mark.django_db
def test_a_draft_gets_no_document(
    make_draft_invoice: Callable[..., Invoice], alice_company: Customer, clerk: User
) -> None:
    with pytest.raises(RenderError):
        services.sign_invoice_document(make_draft_invoice(alice_company), by=clerk)
    assert InvoiceDocument.objects.count() == 0


@pytest.mark.django_db
def test_a_wrong_passphrase_is_a_clear_error_that_names_the_setting(
    alice_document: InvoiceDocument, settings: Any, clerk: User
) -> None:
    settings.DOCUMENTS_KEY_PASSPHRASE = "not the passphrase"

    with pytest.raises(SigningKeyError) as error:
        services.rerender_invoice_document(alice_document.invoice, by=clerk, reason="retry")

    assert error.value.field == "DOCUMENTS_KEY_PASSPHRASE"
    assert "not the passphrase" not in str(error.value)


@pytest.mark.django_db
def test_finalizing_signs_the_pdf_after_commit_in_sync_mode(
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DOCUMENTS_ON_FINALIZE = "sync"
    draft = make_draft_invoice(alice_company)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        invoice = billing_services.finalize_invoice(draft, by=clerk)
    assert not InvoiceDocument.objects.filter(invoice=invoice).exists()
    for callback in callbacks:
        callback()

    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 1


@pytest.mark.django_db
def test_finalizing_enqueues_a_job_in_async_mode(
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django_q.models import OrmQ

    settings.DOCUMENTS_ON_FINALIZE = "async"
    draft = make_draft_invoice(alice_company)

    with django_capture_on_commit_callbacks(execute=True):
        billing_services.finalize_invoice(draft, by=clerk)

    assert OrmQ.objects.count() == 1
    assert InvoiceDocument.objects.count() == 0


@pytest.mark.django_db
def test_documents_off_queues_nothing(
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    draft = make_draft_invoice(alice_company)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        billing_services.finalize_invoice(draft, by=clerk)

    assert callbacks == []
