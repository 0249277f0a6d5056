"""Every billing state change: one function per domain action.

Each service owns its transaction, locks the row it changes, checks its input
(bad input raises a ``billing.exceptions`` error and changes nothing), and
writes its audit event in the same transaction. Status changes go through one
helper, ``_base._transition``, and the one map ``ALLOWED_TRANSITIONS``.

Callers use this package: ``from billing import services``;
``services.finalize_invoice(invoice, by=user)``. The modules split it by
sub-domain: customers, drafts, finalization, settlement, credit notes.
"""

from billing.services._base import (
    ALLOWED_TRANSITIONS,
    COMPANY_FIELDS,
    CUSTOMER_FIELDS,
    Actor,
    InvoiceWithLines,
)
from billing.services.credit_notes import (
    CreditLine,
    CreditNotePreview,
    credit_note_quantities_left,
    issue_credit_note,
    issue_credit_note_for_amount,
    preview_credit_note,
    record_refund_with_credit_note,
)
from billing.services.customers import (
    check_language,
    create_customer,
    link_portal_account,
    set_customer_language,
    update_company_profile,
    update_customer,
)
from billing.services.drafts import (
    add_invoice_line,
    create_draft_invoice,
    create_draft_invoice_with_lines,
    delete_draft_invoice,
    draft_totals,
    remove_invoice_line,
    update_draft_invoice,
    update_invoice_line,
)
from billing.services.finalization import (
    finalize_invoice,
    finalize_invoice_with_lines,
    finalize_invoices,
)
from billing.services.settlement import (
    ReceivedAmount,
    mark_uncollectible,
    record_payment_amount,
    record_payment_amounts,
    record_refund_reopening,
    void_invoice,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "COMPANY_FIELDS",
    "CUSTOMER_FIELDS",
    "Actor",
    "CreditLine",
    "CreditNotePreview",
    "InvoiceWithLines",
    "ReceivedAmount",
    "add_invoice_line",
    "check_language",
    "create_customer",
    "create_draft_invoice",
    "create_draft_invoice_with_lines",
    "credit_note_quantities_left",
    "delete_draft_invoice",
    "draft_totals",
    "finalize_invoice",
    "finalize_invoice_with_lines",
    "finalize_invoices",
    "issue_credit_note",
    "issue_credit_note_for_amount",
    "link_portal_account",
    "mark_uncollectible",
    "preview_credit_note",
    "record_payment_amount",
    "record_payment_amounts",
    "record_refund_reopening",
    "record_refund_with_credit_note",
    "remove_invoice_line",
    "set_customer_language",
    "update_company_profile",
    "update_customer",
    "update_draft_invoice",
    "update_invoice_line",
    "void_invoice",
]
