"""How the API answers billing's errors (``security.api.errors``: one shape, the error's own
message and field): bad input 400; an action the invoice's state does not allow 409;
a seller not set up yet (company profile, numbering series) 409."""

from __future__ import annotations

from billing.documents.exceptions import DocumentError
from billing.exceptions import BillingError, InvalidStatusTransition, MissingConfiguration
from security.api.errors import register_domain_error


def register_billing_errors() -> None:
    """Register billing's error hierarchy with the API's handler (idempotent)."""
    register_domain_error(BillingError, status_code=400, code="invalid")
    register_domain_error(DocumentError, status_code=400, code="invalid_document")
    register_domain_error(InvalidStatusTransition, status_code=409, code="invalid_state")
    register_domain_error(MissingConfiguration, status_code=409, code="not_configured")


register_billing_errors()
