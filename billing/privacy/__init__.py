"""Privacy: retention, the customer's data export, erasure by pseudonymization, and the
versioned privacy policy (docs/privacy.md).

Billing owns customers, invoices and portal users' data, so the orchestration lives
here; card data belongs to payments, which billing never imports: payments adds its part
of an export and of an erasure through ``billing.privacy.registry`` (decisions.md 55).
"""
