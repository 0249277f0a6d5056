"""What every API serializer shares: unknown fields refused, money as integer minor units
beside its currency, decimals exact (never a float).

Serializers check types and shapes only; every rule about the values (a currency an
invoice can be made out in, a VAT rate, an amount left to pay) is the services', which
raise an error naming the field (the API's error handler gives it the one shape).
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from billing.exceptions import BillingError
from billing.money import MAX_MINOR_UNITS, normalize_currency


class StrictSerializer(serializers.Serializer):
    """A request body: a JSON object whose every key is a field of the serializer (a
    misspelt or read-only field is refused by name, never silently ignored)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [_("unknown field")] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


class MinorUnitsField(serializers.IntegerField):
    """An amount of money in the currency's minor unit (12.50 SEK is 1250): a JSON integer,
    never a string, a float or a boolean."""

    default_error_messages = {
        "not_integer": _(
            "an amount is an integer number of minor units (12.50 SEK is 1250), not {value}"
        ),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", -MAX_MINOR_UNITS)
        kwargs.setdefault("max_value", MAX_MINOR_UNITS)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_integer", value=repr(data)[:40])
        return int(super().to_internal_value(data))


class CurrencyField(serializers.CharField):
    """An ISO 4217 code ("SEK", "EUR"), upper-cased."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_length", 3)
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            return normalize_currency(text)
        except BillingError as exc:
            raise serializers.ValidationError(exc.message, code="invalid_currency") from None


class DecimalStringField(serializers.Field):
    """A quantity, unit price or rate: a decimal string ("12.50") or a JSON number, which
    the API's parser reads as an exact Decimal. A float (from any other parser) is refused:
    it may already have changed the value."""

    default_error_messages = {
        "float": _('give a number with decimals as a string, such as "12.50" (not {value})'),
        "invalid": _("{value} is not a number"),
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, float):
            self.fail("float", value=repr(data)[:40])
        if isinstance(data, Decimal) and data.is_finite():
            return data
        if isinstance(data, bool) or not isinstance(data, int | str) or len(str(data)) > 40:
            self.fail("invalid", value=repr(data)[:40])
        try:
            value = Decimal(str(data).strip())
        except InvalidOperation:
            self.fail("invalid", value=repr(data)[:40])
        if not value.is_finite():
            self.fail("invalid", value=repr(data)[:40])
        return value

    def to_representation(self, value: Any) -> str:
        return str(value)


def day(value: datetime.date | None) -> str | None:
    """A date as the API writes it (ISO 8601)."""
    return value.isoformat() if value is not None else None


def moment(value: datetime.datetime | None) -> str | None:
    """A moment as the API writes it: ISO 8601 in UTC ("Z"), as DRF's DateTimeField does
    for a UTC value (a serializer that writes its fields out directly uses this)."""
    if value is None:
        return None
    text = value.astimezone(datetime.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
