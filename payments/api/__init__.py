"""Payments' REST API (``/api/v1/``): payments, refunds, saved cards."""
