"""Payments in the admin, one module per model group:

- ``payments_refunds``: payments and refunds (refund with step-up), the risk review of
  held payments (step-up);
- ``bank_files``: camt.054 uploads and the review list of bank lines;
- ``vault``: saved cards and the vault's key status page;
- the fraud engine's settings and holds: ``payments.fraud.admin``; its rules, lists,
  evaluations, backtests and reports: ``payments.fraud.rules_admin``; its trained model
  versions and their promotion: ``payments.fraud.versions_admin``.

Django's admin imports this package; importing the modules registers their pages.
"""

from payments.admin import bank_files, payments_refunds, vault
from payments.fraud import admin as fraud
from payments.fraud import rules_admin as fraud_rules
from payments.fraud import versions_admin as fraud_versions

__all__ = ["bank_files", "fraud", "fraud_rules", "fraud_versions", "payments_refunds", "vault"]
