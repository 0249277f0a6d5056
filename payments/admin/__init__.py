"""Payments in the admin, one module per model group:

- ``payments_refunds``: payments and refunds (refund with step-up), the risk review of
  held payments (step-up);
- ``bank_files``: camt.054 uploads and the review list of bank lines;
- ``vault``: saved cards and the vault's key status page;
- the fraud engine's settings, holds and reports: ``payments.fraud.admin``.

Django's admin imports this package; importing the modules registers their pages.
"""

from payments.admin import bank_files, payments_refunds, vault
from payments.fraud import admin as fraud

__all__ = ["bank_files", "fraud", "payments_refunds", "vault"]
