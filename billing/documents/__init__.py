"""Signed PDF invoices: render (WeasyPrint, PDF/A-3b + Factur-X), sign (pyHanko PAdES),
verify, and export a period for the accountant. State changes live in
``billing.documents.services``, reads and access checks in ``billing.documents.selectors``.
"""
