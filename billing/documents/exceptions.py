"""Document errors (render, sign, verify, export): each names its field or rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from billing.exceptions import BillingError

if TYPE_CHECKING:
    from billing.documents.en16931 import RuleFailure


class DocumentError(BillingError):
    """Base of every document error."""


class SigningKeyError(DocumentError):
    """The signing key or its passphrase is missing, unreadable or refused."""

    field = "signing_key"


class RenderError(DocumentError):
    """The invoice cannot be rendered (a draft, or its Factur-X XML fails the schema)."""

    field = "invoice"


class InvalidFacturX(RenderError):
    """The invoice's Factur-X XML breaks the XSD or EN 16931 rules: it is not signed."""

    field = "facturx"

    def __init__(self, message: str, *, failures: Sequence[RuleFailure], xml_sha256: str) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.xml_sha256 = xml_sha256


class InvalidUpload(DocumentError):
    """An uploaded file that is not a PDF, is empty or is too large."""

    field = "file"


class InvalidPeriod(DocumentError):
    """An export period whose dates are missing, malformed or reversed."""

    field = "period"


class DocumentsPending(DocumentError):
    """A period export asked for while some of the period's invoices have no signed PDF yet."""

    field = "period"

    def __init__(self, message: str, *, count: int) -> None:
        super().__init__(message)
        self.count = count


class RetryRefused(DocumentError):
    """Signing an invoice's PDF again was asked by someone without the permission, or for an
    invoice that already has it."""

    field = "user"
