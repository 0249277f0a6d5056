"""Payments' panels on the admin home (``security.admin_dashboard``): the payments
operator's day, the fraud analyst's review queue, the vault keys' ages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.admin_format import format_time, money_rows
from payments import selectors
from security.admin_dashboard import Panel, register_panel
from security.charts import Series, daily_bars, days_ending

CHART_DAYS = 30


def payments_chart(*, now: Any = None) -> Any:
    """Payments that went through and that failed, per day over the last 30 days (SVG)."""
    now = now or timezone.now()
    per_day = selectors.payments_per_day(days=CHART_DAYS, now=now)
    days = days_ending(timezone.localdate(now), CHART_DAYS)
    return daily_bars(
        days,
        [
            Series(gettext("went through"), "ok", "#417690", {d: v[0] for d, v in per_day.items()}),
            Series(gettext("failed"), "failed", "#ba2121", {d: v[1] for d, v in per_day.items()}),
        ],
        label=gettext("Card and bank payments per day, last %(days)s days") % {"days": CHART_DAYS},
    )


def operator_panel(request: HttpRequest) -> dict[str, Any]:
    """Today's payments and refunds, unknown outcomes, bank lines to resolve, 30 days."""
    figures = selectors.operator_figures()
    return {
        "captured_today": money_rows(figures.captured_today),
        "failed_today": figures.failed_today,
        "unknown": figures.unknown,
        "oldest_unknown": format_time(figures.oldest_unknown),
        "bank_lines_to_resolve": figures.bank_lines_to_resolve,
        "refunded_today": money_rows(figures.refunded_today),
        "refunds_pending": figures.refunds_pending,
        "refunds_failed": figures.refunds_failed,
        "chart": payments_chart(),
    }


def review_queue_panel(request: HttpRequest) -> dict[str, Any]:
    """Payments held for a risk decision by age, what they come to, holds in force."""
    figures = selectors.review_queue_figures()
    return {
        "waiting": figures.waiting,
        "oldest": format_time(figures.oldest),
        "under_an_hour": figures.under_an_hour,
        "under_a_day": figures.under_a_day,
        "older": figures.older,
        "amounts": money_rows(figures.amounts),
        "active_holds": figures.active_holds,
    }


def key_ages_panel(request: HttpRequest) -> dict[str, Any]:
    """The vault keys' ages against their cryptoperiods."""
    return {
        "keys": [
            {
                "name": key.name,
                "since": format_time(key.created_at),
                "age": _duration(key.age),
                "period": _duration(key.cryptoperiod),
                "overdue": key.overdue,
            }
            for key in selectors.vault_key_ages()
        ]
    }


def _duration(value: Any) -> str:
    if value is None:
        return "—"
    hours = int(value.total_seconds() // 3600)
    if hours >= 48:
        return gettext("%(days)s days") % {"days": hours // 24}
    return gettext("%(hours)s h") % {"hours": hours}


register_panel(
    Panel(
        key="operator",
        title=_("Payments today"),
        permissions=("payments.change_bankline", "payments.refund_payment"),
        figures=operator_panel,
        template="admin/dashboard/operator.html",
        order=30,
    )
)
register_panel(
    Panel(
        key="review-queue",
        title=_("Payments held for risk review"),
        permissions=("payments.decide_risk",),
        figures=review_queue_panel,
        template="admin/dashboard/review_queue.html",
        order=40,
    )
)
register_panel(
    Panel(
        key="key-ages",
        title=_("Vault keys"),
        permissions=("payments.view_key_status",),
        figures=key_ages_panel,
        template="admin/dashboard/key_ages.html",
        order=60,
    )
)
