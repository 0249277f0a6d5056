"""The review as a document: one template for the admin page and the PDF, the charts as
SVG images, the PDF rendered by WeasyPrint (PDF/A-3b) and signed like invoices (PAdES, the
company's certificate: ``billing.documents``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.reviews.charts import data_uri, review_charts
from audit.reviews.models import SecurityReview

# The two long tables (every staff account; up to 200 role changes) are printed one cell
# per row, the row's fields padded into columns of monospaced text, rather than one cell
# per field: WeasyPrint lays out and draws every cell as boxes of its own, and these
# tables' cells were most of the PDF's layout (docs/performance.md, "Quarterly review";
# an invoice's line figures are printed the same way, docs/decisions.md 21). The last
# field of a row is free text and may wrap; a field longer than its column's cap keeps
# all its characters and only shifts the rest of its own row.
Field = tuple[str, bool]
"""A field's text and whether it is emphasised (printed bold)."""

_GAP = "  "
_ACCOUNT_CAP = 24  # characters: a long username does not widen every row
_CHANGE_CAP = 44


def aligned_rows(
    head: Sequence[str], rows: Sequence[Sequence[Field]], caps: Sequence[int] = ()
) -> dict[str, Any]:
    """``head`` and ``rows`` padded into columns of monospaced text: ``{"head": text,
    "rows": [[(text, emphasised), ...], ...]}``, each row's fields to be printed in order,
    without separators. Column ``n`` is as wide as its longest field, at most ``caps[n]``
    characters (when given); the last column is not padded."""
    last = len(head) - 1
    widths = []
    for n in range(last):
        width = max([len(head[n]), *(len(row[n][0]) for row in rows)])
        widths.append(min(width, caps[n]) if n < len(caps) else width)

    def padded(n: int, text: str) -> str:
        return text if n == last else text.ljust(widths[n]) + _GAP

    return {
        "head": "".join(padded(n, text) for n, text in enumerate(head)),
        "rows": [
            [(padded(n, text), strong) for n, (text, strong) in enumerate(row)] for row in rows
        ],
    }


def accounts_table(access: dict[str, Any]) -> dict[str, Any]:
    """The access review's staff accounts as aligned rows (``aligned_rows``)."""
    head = [
        _("Account"),
        _("Last login"),
        _("Second factor"),
        _("Privileged"),
        _("State"),
        _("Roles"),
    ]
    rows = []
    for a in access["accounts"]:
        name = a["username"] + (" (superuser)" if a["superuser"] else "")
        if not a["active"]:
            state = (_("disabled"), False)
        elif a["dormant"]:
            state = (_("dormant"), True)
        else:
            state = (_("active"), False)
        rows.append(
            [
                (name, False),
                ((a["last_login"] or _("never"))[:16], False),
                (_("yes"), False) if a["second_factor"] else (_("no"), True),
                (_("yes") if a["privileged"] else "—", False),
                state,
                (", ".join(a["roles"]) or "—", False),
            ]
        )
    return aligned_rows(head, rows, caps=[_ACCOUNT_CAP])


def role_changes_table(access: dict[str, Any]) -> dict[str, Any]:
    """The access review's role changes as aligned rows (``aligned_rows``)."""
    head = ["#", _("When"), _("Change"), _("By")]
    rows = [
        [
            (str(c["seq"]), False),
            (c["at"][:16], False),
            (f"{c['action']} ({_('account')} {c['object_id']})", False),
            (c["actor"], False),
        ]
        for c in access["role_change_list"]
    ]
    return aligned_rows(head, rows, caps=[12, 16, _CHANGE_CAP])


def review_context(review: SecurityReview, sections: dict[str, Any]) -> dict[str, Any]:
    """What ``audit/review_body.html`` shows: the sections, the charts, the sign-off."""
    return {
        "review": review,
        "s": sections,
        "charts": {name: data_uri(svg) for name, svg in review_charts(sections).items()},
        "tables": {
            "accounts": accounts_table(sections["access"]),
            "role_changes": role_changes_table(sections["access"]),
        },
        "rendered_at": timezone.now(),
    }


def render_review_html(review: SecurityReview, sections: dict[str, Any]) -> str:
    """The review as a standalone HTML document (the PDF's source)."""
    return render_to_string("audit/review_pdf.html", review_context(review, sections))


def render_review_pdf(review: SecurityReview, sections: dict[str, Any]) -> bytes:
    """The review as a signed PDF."""
    from billing.documents.render import html_to_pdf
    from billing.documents.sign import sign_pdf

    pdf = html_to_pdf(render_review_html(review, sections))
    return sign_pdf(pdf, reason=f"Tillit security review {review.label}")
