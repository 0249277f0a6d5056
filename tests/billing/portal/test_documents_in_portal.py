"""Documents where customers look: "Download PDF" on the invoice, receipt and payment pages
(each customer only ever their own), credit notes listed with theirs, and the security
page's key fingerprints, which the period ZIP's README points to."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.test import Client
from django.urls import reverse

from billing import services
from billing.delivery import pgp
from billing.documents.export import build_period_export
from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from billing.money import Money
from security.models import User
from tests.billing.delivery.conftest import gnupg_home  # noqa: F401 - fixture
from tests.billing.documents.conftest import (  # noqa: F401 - fixtures
    sign_invoice,
    signing_key,
    signing_key_dir,
)
from tests.factories import line

pytestmark = pytest.mark.django_db

Sign = Callable[[Invoice], InvoiceDocument]


@pytest.fixture
def paid_and_signed(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    sign_invoice: Sign,  # noqa: F811
) -> Invoice:
    """Alice's invoice, signed, paid in full, then 100 SEK refunded with a signed credit note."""
    invoice = make_open_invoice(alice_company, [line("Licence", "1", "800")])
    sign_invoice(invoice)
    services.record_payment_amount(invoice, amount=invoice.gross, by=clerk)
    note = services.record_refund_with_credit_note(
        invoice, amount=Money(10_000, "SEK"), reason="returned", by=clerk
    )
    sign_invoice(note)
    invoice.refresh_from_db()
    return invoice


def pdf_url(invoice: Invoice | int) -> str:
    return reverse("documents:download", args=[getattr(invoice, "pk", invoice)])


def test_the_invoice_and_receipt_pages_link_the_signed_pdf_and_the_credit_notes(
    paid_and_signed: Invoice, alice: User, portal_client_for: Callable[[User], Client]
) -> None:
    client = portal_client_for(alice)
    note = paid_and_signed.credit_notes.get()

    detail = client.get(reverse("portal:invoice", args=[paid_and_signed.pk])).content.decode()
    receipt = client.get(reverse("portal:receipt", args=[paid_and_signed.pk])).content.decode()

    for page in (detail, receipt):
        assert f'href="{pdf_url(paid_and_signed)}"' in page and 'id="download-pdf"' in page
        assert note.display_number in page and f'href="{pdf_url(note)}"' in page
    pdf = client.get(pdf_url(paid_and_signed))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert client.get(pdf_url(note)).status_code == 200


def test_an_invoice_not_signed_yet_says_its_pdf_is_on_its_way(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    alice: User,
    portal_client_for: Callable[[User], Client],
) -> None:
    invoice = make_open_invoice(alice_company)

    page = portal_client_for(alice).get(reverse("portal:invoice", args=[invoice.pk]))

    assert 'id="pdf-pending"' in page.content.decode()
    assert pdf_url(invoice) not in page.content.decode()


def test_bob_never_gets_alices_pdfs_nor_a_link_to_them(
    paid_and_signed: Invoice,
    bob: User,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    sign_invoice: Sign,  # noqa: F811
    portal_client_for: Callable[[User], Client],
) -> None:
    bobs = make_open_invoice(bob_company, currency="EUR")
    sign_invoice(bobs)
    client = portal_client_for(bob)
    note = paid_and_signed.credit_notes.get()

    own_page = client.get(reverse("portal:invoice", args=[bobs.pk])).content.decode()

    assert pdf_url(bobs) in own_page and client.get(pdf_url(bobs)).status_code == 200
    assert pdf_url(paid_and_signed) not in own_page
    for target in (paid_and_signed, note):
        assert client.get(pdf_url(target)).status_code == 404
        assert (
            client.get(reverse("documents:download_version", args=[target.pk, 1])).status_code
            == 404
        )
    assert client.get(reverse("portal:receipt", args=[paid_and_signed.pk])).status_code == 404


def test_the_security_page_shows_the_fingerprints_the_period_export_refers_to(
    paid_and_signed: Invoice,
    alice: User,
    portal_client_for: Callable[[User], Client],
    gnupg_home: Path,  # noqa: F811
    settings: Any,
) -> None:
    pgp_fingerprint = pgp.company_key_fingerprint()  # the company's PGP key, created here
    settings.DOCUMENTS_CREATE_KEYS = False
    bundle = build_period_export(start=paid_and_signed.issue_date, end=paid_and_signed.issue_date)
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        pem = archive.read("signing-certificate.pem")
        readme = archive.read("README.txt").decode()
    certificate = x509.load_pem_x509_certificate(pem)
    sha256 = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()

    page = portal_client_for(alice).get(reverse("portal_pay:security")).content.decode()

    assert "security page" in readme and "PGP" in readme
    assert f'id="signing-certificate-sha256">{sha256}<' in page
    assert f'id="pgp-fingerprint">{pgp_fingerprint}<' in page


def test_the_security_page_never_creates_a_key(
    alice: User, portal_client_for: Callable[[User], Client], settings: Any, tmp_path: Path
) -> None:
    settings.DOCUMENTS_SIGNING_KEY_FILE = tmp_path / "keys" / "none.p12"
    settings.DELIVERY_GNUPGHOME = tmp_path / "gnupg"
    settings.DOCUMENTS_CREATE_KEYS = True

    page = portal_client_for(alice).get(reverse("portal_pay:security")).content.decode()

    assert 'id="signing-certificate-sha256">' in page and 'id="pgp-fingerprint">' in page
    assert not (tmp_path / "keys").exists() and not (tmp_path / "gnupg").exists()
