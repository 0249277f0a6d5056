"""How the admin writes money, time and states: one formatter for every staff page.

Amounts are stored in the currency's minor unit (``billing.money``); a staff member reads
them in currency units with the currency beside them ("1,250.00 SEK", "1 250,00 SEK" in
Swedish), never as the stored integer. Times are shown in the installation's time zone
(``TIME_ZONE``), the zone every other admin page uses. States are shown by their labels.

Billing's, payments' and the dashboards' admin pages call these functions; the audit
log's admin, which may not import billing, gets ``format_details`` handed to it when the
billing app starts (``audit.admin.set_details_formatter``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models
from django.utils import timezone, translation

from billing.exceptions import BillingError
from billing.money import Money

# Audit details and other JSON records whose integer values under these keys are amounts
# in the minor unit of the record's ``currency``.
MONEY_KEYS = frozenset(
    {
        "amount",
        "amount_due",
        "amount_paid",
        "amount_credited",
        "credited_amount",
        "gross",
        "gross_total",
        "matched_amount",
        "net",
        "net_amount",
        "net_total",
        "refunded_amount",
        "reversed_amount",
        "taxable_amount",
        "total",
        "vat",
        "vat_amount",
        "vat_total",
    }
)

_NO_VALUE = "—"


def _language() -> str:
    return translation.get_language() or "en"


def format_money(amount: int | None, currency: str) -> str:
    """An amount stored in minor units, in currency units with its currency, as the
    reader's language writes it: "1,250.00 SEK" (English), "1 250,00 SEK" (Swedish)."""
    if amount is None:
        return _NO_VALUE
    return Money(int(amount), currency).format(_language())


def money_rows(figures: Iterable[Any]) -> list[dict[str, Any]]:
    """Figures per currency (``currency``, ``count``, ``amount`` in minor units) as a
    dashboard's rows: the amount written in currency units."""
    return [
        {"currency": f.currency, "count": f.count, "amount": format_money(f.amount, f.currency)}
        for f in figures
    ]


def format_time(moment: datetime.datetime | None) -> str:
    """A moment in the installation's time zone (``TIME_ZONE``), to the minute."""
    if moment is None:
        return _NO_VALUE
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.UTC)
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def format_date(day: datetime.date | None) -> str:
    """A date as every admin page writes it (ISO 8601)."""
    return _NO_VALUE if day is None else day.isoformat()


def status_label(choices: type[models.TextChoices], value: str) -> str:
    """A stored state by its label ("Partially refunded", not "partially_refunded")."""
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def format_details(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A JSON record (an audit event's details) as (key, text) rows: amounts under
    ``MONEY_KEYS`` in currency units when the record names its ``currency``, nested
    values as compact JSON-like text, everything else as it is."""
    currency = details.get("currency")
    rows = []
    for key in sorted(details):
        value = details[key]
        rows.append((key, _detail_text(key, value, currency)))
    return rows


def _detail_text(key: str, value: Any, currency: Any) -> str:
    if (
        key in MONEY_KEYS
        and isinstance(value, int)
        and not isinstance(value, bool)
        and isinstance(currency, str)
    ):
        try:
            return format_money(value, currency)
        except BillingError:
            return str(value)
    if isinstance(value, Mapping):
        inner = value.get("currency", currency)
        return "{" + ", ".join(f"{k}: {_detail_text(k, v, inner)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_detail_text(key, item, currency) for item in value) + "]"
    if value is None:
        return _NO_VALUE
    return str(value)
