"""Quarterly security reviews: generated from the system's own evidence at each quarter's
end and on demand, as a signed PDF and an admin page, signed off by a security officer.

Sections are computed by ``audit.reviews.selectors`` (one function per figure, shared with
the staff dashboards) and ``audit.reviews.checks`` (technical checks, PCI DSS checklist);
``audit.reviews.services`` generates, signs off and tracks findings; ``charts`` draws the
SVG charts and ``document`` the PDF.
"""
