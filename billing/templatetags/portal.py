"""Template helpers for the portal: money in the reader's language (in text and in form
fields), invoice state labels and badges."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from billing.money import Money, format_decimal

register = template.Library()

_PLAIN_AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


@register.filter
def money(value: Any, currency: str | None = None) -> str:
    """``{{ invoice.gross|money }}`` or ``{{ amount_minor|money:invoice.currency }}``."""
    if not isinstance(value, Money):
        if currency is None or value is None:
            return ""
        value = Money(int(value), currency)
    return value.format(get_language() or "en")


@register.filter
def number(value: Any, decimals: int = 0) -> str:
    """``{{ line.unit_price|number:2 }}``: grouped, in the reader's language (as on the PDF)."""
    if value is None:
        return ""
    return format_decimal(value, get_language() or "en", decimals=int(decimals))


@register.filter
def amount_input(value: Any) -> str:
    """A form field's amount as the reader writes it: the field's initial "1482.44" shows
    as "1 482,44" in Swedish and "1,482.44" in English; what the reader typed is kept."""
    text = "" if value is None else str(value)
    if not _PLAIN_AMOUNT.fullmatch(text):
        return text
    decimals = len(text.partition(".")[2])
    return format_decimal(Decimal(text), get_language() or "en", decimals=decimals)


def _state(invoice: Any, today: datetime.date | None) -> str:
    today = today or timezone.localdate()
    if invoice.status == "open" and invoice.due_date and invoice.due_date < today:
        return "overdue"
    return str(invoice.status)


@register.simple_tag
def invoice_badge(invoice: Any, today: datetime.date | None = None) -> SafeString:
    """``{% invoice_badge invoice today %}``: the state as a badge, overdue set apart."""
    state = _state(invoice, today)
    return format_html('<span class="badge badge-{}">{}</span>', state, _label(state))


@register.simple_tag
def invoice_state(invoice: Any, today: datetime.date | None = None) -> str:
    """Open, overdue, paid, void or uncollectible, in the reader's language."""
    return _label(_state(invoice, today))


def _label(state: str) -> str:
    if state == "overdue":
        return _("Overdue")
    return {
        "open": _("Open"),
        "paid": _("Paid"),
        "void": _("Void"),
        "uncollectible": _("Uncollectible"),
        "draft": _("Draft"),
    }.get(state, state)


@register.simple_tag
def payment_state(payment: Any) -> str:
    if getattr(payment, "awaiting_risk_review", False):
        return _("Under review")
    return {
        "pending": _("Processing"),
        "succeeded": _("Succeeded"),
        "failed": _("Failed"),
        "refunded": _("Refunded"),
        "partially_refunded": _("Partially refunded"),
        "unknown": _("Being confirmed"),
    }.get(payment.status, payment.status)


@register.simple_tag
def payment_in_flight(invoice: Any) -> Any:
    """The invoice's oldest payment still in flight (being confirmed, or under review), or
    None, read from the payments the page shows anyway (``invoice.payments``; billing never
    imports payments): while there is one, the page offers no second payment."""
    held = [p for p in invoice.payments.all() if p.status in ("pending", "unknown")]
    return min(held, key=lambda p: (p.created_at, p.pk)) if held else None


@register.simple_tag
def refund_state(refund: Any) -> str:
    """Where a refund is, in the reader's language."""
    return {
        "pending": _("Being refunded"),
        "succeeded": _("Refunded"),
        "failed": _("Refund failed"),
    }.get(refund.status, refund.status)
