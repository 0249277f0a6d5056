"""Document errors (render, sign, verify, export): each names its field or rule."""

from __future__ import annotations

from billing.exceptions import BillingError


class DocumentError(BillingError):
    """Base of every document error."""


class SigningKeyError(DocumentError):
    """The signing key or its passphrase is missing, unreadable or refused."""

    field = "signing_key"


class RenderError(DocumentError):
    """The invoice cannot be rendered (a draft, or its Factur-X XML fails the schema)."""

    field = "invoice"


class InvalidUpload(DocumentError):
    """An uploaded file that is not a PDF, is empty or is too large."""

    field = "file"


class InvalidPeriod(DocumentError):
    """An export period whose dates are missing, malformed or reversed."""

    field = "period"
