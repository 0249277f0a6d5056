"""The staff admin for billing, one module per model group:

- ``base``: ``ServiceAdmin`` (a service's refusal becomes a message) and the helpers that
  hand a form's values to ``billing.services``: the admin never writes a row itself;
- ``company``: the seller's profile;
- ``customers``: customers and the portal users linked to them;
- ``invoices``: invoices and credit notes (drafts edited, finalized ones read-only, live
  totals, bulk actions), and the numbering series;
- ``invoice_lines``: an invoice's lines (the editor, the frozen lines);
- ``invoice_actions``: the actions on an invoice's own page: Finalize and Void with a
  confirmation naming the number, Credit (all, by line, by amount), Preview PDF;
- ``invoice_background``: an invoice's signed PDF and deliveries on its page, "Retry now".

Documents and deliveries have their own admins (``billing.documents.admin``,
``billing.delivery.admin``). Django's admin imports this package; importing the modules
registers their pages.
"""

from billing.admin import company, customers, invoices

__all__ = ["company", "customers", "invoices"]
