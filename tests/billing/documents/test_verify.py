"""Verification: ours and intact, modified, foreign signature, unsigned, not a PDF."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from billing.documents import keys, render, selectors, sign
from billing.documents.exceptions import InvalidUpload
from billing.documents.models import InvoiceDocument, SigningCertificate
from billing.documents.verify import check_pdf_upload
from billing.models import Customer, Invoice
from security.models import User
from tests.factories import audit_events


def _flip_one_byte(pdf: bytes) -> bytes:
    data = bytearray(pdf)
    data[len(data) // 3] ^= 0x01
    return bytes(data)


@pytest.mark.django_db
def test_an_untouched_signed_pdf_is_genuine_and_named(alice_document: InvoiceDocument) -> None:
    result = selectors.verify_document(bytes(alice_document.content))

    assert result.outcome == "genuine"
    assert result.document == alice_document
    assert any("this company's" in s for s in result.sentences)
    assert any(alice_document.invoice.display_number in s for s in result.sentences)


@pytest.mark.django_db
def test_one_flipped_byte_is_reported_as_modified(alice_document: InvoiceDocument) -> None:
    result = selectors.verify_document(_flip_one_byte(bytes(alice_document.content)))

    assert result.outcome in {"modified", "damaged"}
    assert not result.genuine
    assert any("MODIFIED" in s or "modified" in s for s in result.sentences)


@pytest.mark.django_db
def test_a_pdf_signed_by_another_self_made_certificate_is_not_ours(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, tmp_path: Path
) -> None:
    other_path = tmp_path / "other.p12"
    keys.create_key_file(
        common_name="Tillit Demo AB invoices", organisation="Tillit Demo AB", path=other_path
    )
    other = keys._load(str(other_path), other_path.stat().st_mtime, keys.passphrase())
    forged = sign.sign_pdf(
        render.render_invoice_pdf(make_open_invoice(alice_company)), reason="x", identity=other
    )

    result = selectors.verify_document(forged)

    assert result.outcome == "foreign_signature"
    assert any("NOT by this company's certificate" in s for s in result.sentences)


@pytest.mark.django_db
def test_an_unsigned_pdf_is_reported_as_unsigned(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    result = selectors.verify_document(render.render_invoice_pdf(make_open_invoice(alice_company)))

    assert result.outcome == "unsigned"
    assert "no digital signature" in result.sentences[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"GIF89a not a pdf", "not a PDF"), (b"%PDF-" + b"0" * 2048, "larger")],
)
def test_a_bad_upload_is_refused_naming_the_field(data: bytes, message: str) -> None:
    with pytest.raises(InvalidUpload) as error:
        check_pdf_upload(
            data, max_bytes=1024 * 1024 if len(data) < 2000 else 1000, field_name="pdf"
        )
    assert error.value.field == "pdf"
    assert message in error.value.message


@pytest.mark.django_db
def test_a_customer_never_learns_which_invoice_another_customers_pdf_is(
    alice_document: InvoiceDocument, alice: User, bob: User
) -> None:
    as_bob = selectors.verify_document(bytes(alice_document.content), user=bob)
    as_alice = selectors.verify_document(bytes(alice_document.content), user=alice)

    assert as_bob.document is None
    assert not any(alice_document.invoice.display_number in s for s in as_bob.sentences)
    assert as_alice.outcome == "genuine"


@pytest.mark.django_db
def test_the_command_says_genuine_and_audits(
    alice_document: InvoiceDocument, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(bytes(alice_document.content))

    call_command("verify_invoice_pdf", str(path))

    out = capsys.readouterr().out
    assert "GENUINE" in out and alice_document.invoice.display_number in out
    [event] = audit_events("invoice.document_verified", alice_document.invoice)
    assert event.details["outcome"] == "genuine"


@pytest.mark.django_db
def test_the_command_fails_on_a_modified_file(
    alice_document: InvoiceDocument, tmp_path: Path
) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(_flip_one_byte(bytes(alice_document.content)))

    with pytest.raises(CommandError, match="NOT GENUINE"):
        call_command("verify_invoice_pdf", str(path))


@pytest.mark.django_db
def test_the_command_refuses_a_non_pdf_naming_the_argument(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")

    with pytest.raises(CommandError, match="FILE: this is not a PDF"):
        call_command("verify_invoice_pdf", str(path))


@pytest.mark.django_db
def test_a_document_signed_with_an_earlier_certificate_stays_genuine(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    sign_invoice: Callable[[Invoice], InvoiceDocument],
    settings: Any,
    tmp_path: Path,
) -> None:
    earlier = sign_invoice(make_open_invoice(alice_company))
    # The company's key is replaced (a new certificate from its CA, say).
    settings.DOCUMENTS_SIGNING_KEY_FILE = tmp_path / "next.p12"
    keys.create_key_file(common_name="Tillit Demo AB invoices", organisation="Tillit Demo AB")
    later = sign_invoice(make_open_invoice(alice_company))
    assert later.signer_fingerprint != earlier.signer_fingerprint

    assert selectors.verify_document(bytes(earlier.content)).outcome == "genuine"
    assert selectors.verify_document(bytes(later.content)).outcome == "genuine"
    assert list(SigningCertificate.objects.values_list("fingerprint", flat=True)) == [
        earlier.signer_fingerprint,
        later.signer_fingerprint,
    ]


@pytest.mark.django_db
def test_the_trusted_certificates_are_read_in_constant_queries(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    sign_invoice: Callable[[Invoice], InvoiceDocument],
    django_assert_num_queries: Any,
) -> None:
    sign_invoice(make_open_invoice(alice_company))
    with django_assert_num_queries(1):
        one = selectors.known_certificates()
    for _ in range(5):
        sign_invoice(make_open_invoice(alice_company))
    with django_assert_num_queries(1):
        six = selectors.known_certificates()

    assert one == six and len(six) == 1


@pytest.mark.django_db
def test_the_migration_registers_the_certificates_of_stored_documents(
    alice_document: InvoiceDocument,
) -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("billing.documents.migrations.0003_signing_certificates")
    SigningCertificate.objects.all().delete()

    migration.remember_used_certificates(apps, None)

    assert list(SigningCertificate.objects.values_list("fingerprint", "certificate")) == [
        (alice_document.signer_fingerprint, alice_document.signer_certificate)
    ]
