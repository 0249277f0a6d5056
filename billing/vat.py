"""VAT per EN 16931: line nets, then VAT per (category, rate) on their sum, half-up.

All amounts are integers in the currency's minor unit; quantities, unit prices
and rates are Decimal. Rounding is ROUND_HALF_UP (0.5 away from zero) to the
minor unit, once per line net and once per VAT group, never per line VAT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from billing.exceptions import InvalidQuantity, InvalidVatRate
from billing.models import VatCategory
from billing.money import currency_exponent
from billing.validators import configured_vat_rates

# Categories whose rate is always 0 (EN 16931 BR-Z/E/AE/IC/G rules).
ZERO_RATED_CATEGORIES = frozenset(
    {
        VatCategory.ZERO,
        VatCategory.EXEMPT,
        VatCategory.REVERSE_CHARGE,
        VatCategory.INTRA_EU,
        VatCategory.EXPORT,
    }
)
# Categories where the buyer must have a VAT id (EN 16931 BR-AE-02, BR-IC-02).
BUYER_VAT_ID_REQUIRED = frozenset({VatCategory.REVERSE_CHARGE, VatCategory.INTRA_EU})

VatGroup = tuple[str, Decimal]
"""(category, rate): the unit VAT is computed on."""


@dataclass(frozen=True, slots=True)
class VatBreakdown:
    """One VAT group of a document: its taxable amount and VAT, in minor units."""

    category: str
    rate: Decimal
    taxable_amount: int
    vat_amount: int

    def as_json(self) -> dict[str, str | int]:
        return {
            "category": self.category,
            "rate": str(self.rate),
            "taxable_amount": self.taxable_amount,
            "vat_amount": self.vat_amount,
        }


@dataclass(frozen=True, slots=True)
class Totals:
    """A document's totals: net + vat = gross, and the VAT groups they come from."""

    net: int
    vat: int
    gross: int
    breakdown: tuple[VatBreakdown, ...]


def _round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def normalize_rate(rate: object) -> Decimal:
    """A rate as a Decimal percent ("25" -> Decimal("25")); InvalidVatRate if not a number."""
    try:
        value = Decimal(str(rate))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidVatRate(f"{rate!r} is not a number", field="vat_rate") from exc
    if not value.is_finite():
        raise InvalidVatRate(f"{rate!r} is not a number", field="vat_rate")
    return value.normalize() if value else Decimal(0)


def check_vat(category: str, rate: object) -> Decimal:
    """The rate, if the category allows it and it is configured; else InvalidVatRate."""
    if category not in VatCategory.values:
        raise InvalidVatRate(
            f"{category!r} is not a VAT category (one of {', '.join(VatCategory.values)})",
            field="vat_category",
        )
    value = normalize_rate(rate)
    if category in ZERO_RATED_CATEGORIES:
        if value != 0:
            raise InvalidVatRate(
                f"category {category} is always 0%, not {value}%", field="vat_rate"
            )
        return Decimal(0)
    allowed = configured_vat_rates()
    if value <= 0 or value not in allowed:
        choices = ", ".join(str(r) for r in sorted(r for r in allowed if r > 0))
        raise InvalidVatRate(
            f"{value}% is not a configured standard rate (BILLING_VAT_RATES: {choices})",
            field="vat_rate",
        )
    return value


def check_quantity(quantity: object) -> Decimal:
    """A strictly positive Decimal quantity; InvalidQuantity otherwise."""
    try:
        value = quantity if isinstance(quantity, Decimal) else Decimal(str(quantity))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidQuantity(f"{quantity!r} is not a number", field="quantity") from exc
    if isinstance(quantity, float):
        raise InvalidQuantity("a quantity must be a Decimal or a string, never a float")
    if not value.is_finite() or value <= 0:
        raise InvalidQuantity(f"must be greater than zero, not {quantity}", field="quantity")
    return value


def line_net_amount(quantity: Decimal, unit_price: Decimal, currency: str) -> int:
    """quantity x unit_price in minor units, rounded half-up (EN 16931 BT-131)."""
    return _round_half_up((quantity * unit_price).scaleb(currency_exponent(currency)))


def vat_amount(taxable_amount: int, rate: Decimal) -> int:
    """VAT on a group's taxable amount (minor units), rounded half-up (BT-117)."""
    return _round_half_up(Decimal(taxable_amount) * rate / 100)


def vat_included(gross: int, rate: Decimal) -> int:
    """The VAT a gross amount (minor units) holds at ``rate``, rounded half-up (a price
    reduction of a gross amount, split into its taxable amount and VAT)."""
    return _round_half_up(Decimal(gross) * rate / (100 + rate))


def compute_totals(
    lines: Iterable[tuple[str, Decimal, int]],
    *,
    vat_overrides: Mapping[VatGroup, int] | None = None,
) -> Totals:
    """Totals from (category, rate, line net) triples: VAT per group on the sum of nets.

    ``vat_overrides`` replaces a group's computed VAT (a credit note taking the
    exact remainder of an invoice's VAT); it never changes the taxable amounts.
    """
    taxable: dict[VatGroup, int] = {}
    for category, rate, net in lines:
        key = (category, normalize_rate(rate))
        taxable[key] = taxable.get(key, 0) + net
    overrides = vat_overrides or {}
    breakdown = tuple(
        VatBreakdown(
            category=category,
            rate=rate,
            taxable_amount=amount,
            vat_amount=overrides.get((category, rate), vat_amount(amount, rate)),
        )
        for (category, rate), amount in sorted(
            taxable.items(), key=lambda kv: (kv[0][0], -kv[0][1])
        )
    )
    net = sum(group.taxable_amount for group in breakdown)
    vat = sum(group.vat_amount for group in breakdown)
    return Totals(net=net, vat=vat, gross=net + vat, breakdown=breakdown)
