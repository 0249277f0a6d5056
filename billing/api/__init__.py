"""Billing's REST API (``/api/v1/``): customers, invoices, invoice documents."""
