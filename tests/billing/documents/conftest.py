"""Documents tests: one demo signing key for the session, signed invoices for Alice and Bob."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from billing.documents import keys, services
from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from security.models import User

PASSPHRASE = "correct horse invoice staple"


@pytest.fixture(scope="session")
def signing_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(autouse=True)
def signing_key(signing_key_dir: Path, settings: Any) -> Path:
    """The company's test signing key (created once per session, outside the database)."""
    path = signing_key_dir / "invoice_signing.p12"
    settings.DOCUMENTS_SIGNING_KEY_FILE = path
    settings.DOCUMENTS_KEY_PASSPHRASE = PASSPHRASE
    settings.DOCUMENTS_CREATE_KEYS = False
    if not path.exists():
        keys.create_key_file(common_name="Tillit Demo AB invoices", organisation="Tillit Demo AB")
    return path


@pytest.fixture
def sign_invoice(clerk: User) -> Callable[[Invoice], InvoiceDocument]:
    def sign(invoice: Invoice) -> InvoiceDocument:
        return services.sign_invoice_document(invoice, by=clerk)

    return sign


@pytest.fixture
def alice_document(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    sign_invoice: Callable[[Invoice], InvoiceDocument],
) -> InvoiceDocument:
    """Alice's invoice F-000001, finalized and signed."""
    return sign_invoice(make_open_invoice(alice_company))
