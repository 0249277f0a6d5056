"""Billing's panels on the admin home (``security.admin_dashboard``): the billing clerk's
work queue and the accountant's period figures."""

from __future__ import annotations

import datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing import selectors
from billing.admin_format import format_money, money_rows
from billing.delivery.selectors import failed_delivery_count
from security.admin_dashboard import Panel, register_panel


def clerk_panel(request: HttpRequest) -> dict[str, Any]:
    """Drafts, overdue, due this week, paid today, failed deliveries."""
    figures = selectors.clerk_figures()
    return {
        "drafts": figures.drafts,
        "overdue": money_rows(figures.overdue),
        "due_this_week": money_rows(figures.due_this_week),
        "paid_today": money_rows(figures.paid_today),
        "failed_deliveries": failed_delivery_count(),
    }


def accountant_panel(request: HttpRequest) -> dict[str, Any]:
    """This month and last month: invoiced less credited, VAT per rate; export and verify."""
    today = timezone.localdate()
    this_start, this_end = selectors.month_bounds(today)
    last_start, _last_end = selectors.month_bounds(this_start - datetime.timedelta(days=1))
    periods = []
    for start, end in ((this_start, this_end), (last_start, this_start)):
        figures = selectors.period_figures(start, end)
        periods.append(
            {
                "label": f"{start:%Y-%m}",
                "invoices": figures.invoices,
                "credit_notes": figures.credit_notes,
                "totals": money_rows(figures.totals),
                "vat": [
                    {
                        "group": f"{v.category} {v.rate}%",
                        "taxable": format_money(v.taxable_amount, v.currency),
                        "vat": format_money(v.vat_amount, v.currency),
                    }
                    for v in figures.vat
                ],
            }
        )
    return {"periods": periods}


register_panel(
    Panel(
        key="clerk",
        title=_("Invoices to work on"),
        permissions=("billing.add_invoice",),
        figures=clerk_panel,
        template="admin/dashboard/clerk.html",
        order=10,
    )
)
register_panel(
    Panel(
        key="accountant",
        title=_("The books"),
        permissions=("documents.view_invoicedocument",),
        figures=accountant_panel,
        template="admin/dashboard/accountant.html",
        order=20,
    )
)
