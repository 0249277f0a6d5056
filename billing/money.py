"""Money: integer minor units beside an ISO 4217 currency. Never a float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

import pycountry
from django.utils import numberformat

from billing.exceptions import InvalidInput, UnknownCurrency

# The largest amount (minor units) a line or an invoice may come to: far above any real
# invoice (10 trillion in a 2-decimal currency), and with room below PostgreSQL's bigint
# (9.2e18) for sums and VAT, so a bad input is refused naming its field, never an
# overflow in the database.
MAX_MINOR_UNITS = 10**15

# ISO 4217 minor-unit exponents that are not 2. Every other active currency in
# the ISO list (pycountry ships it) has two decimals.
_EXPONENT_EXCEPTIONS: dict[str, int] = {
    # no minor unit
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    # three decimals
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    # four decimals
    "CLF": 4,
    "UYW": 4,
}
# Funds, precious metals and testing codes have no minor unit that money can use.
_NOT_MONEY = frozenset(
    {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}
)


@cache
def _iso_currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies) - _NOT_MONEY


def normalize_currency(code: object) -> str:
    """The upper-case ISO 4217 code, or UnknownCurrency naming the field ``currency``."""
    if not isinstance(code, str) or code.strip().upper() not in _iso_currencies():
        raise UnknownCurrency(f"{code!r} is not an ISO 4217 currency code", field="currency")
    return code.strip().upper()


def currency_exponent(code: str) -> int:
    """Digits after the decimal point in the currency's minor unit (SEK 2, JPY 0, KWD 3)."""
    return _EXPONENT_EXCEPTIONS.get(normalize_currency(code), 2)


# Digits an amount may have before its decimal point: more is refused before any
# arithmetic (scaling "1e999999999" raises decimal.Overflow, which is no answer to a user).
_MAX_INTEGER_DIGITS = len(str(MAX_MINOR_UNITS))


# EN 16931 states every document amount with at most two decimals (BR-DEC-09 to -23):
# an invoice is only ever made out in a currency whose minor unit fits (docs/billing.md).
INVOICE_MAX_DECIMALS = 2


def invoice_currency(code: object) -> str:
    """The upper-case ISO 4217 code of a currency an invoice can be made out in: one whose
    amounts EN 16931 can state exactly (at most two decimals: SEK, EUR, JPY; not KWD, BHD
    or CLF). Otherwise InvalidInput naming the field ``currency``."""
    currency = normalize_currency(code)
    exponent = currency_exponent(currency)
    if exponent > INVOICE_MAX_DECIMALS:
        raise InvalidInput(
            f"{currency} amounts have {exponent} decimals; an EN 16931 invoice states amounts"
            f" with at most {INVOICE_MAX_DECIMALS}, so invoices cannot be made out in {currency}",
            field="currency",
        )
    return currency


def to_minor_units(amount: Decimal, currency: str) -> int:
    """A Decimal amount in major units, which must be exact in the minor unit."""
    exponent = currency_exponent(currency)
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidInput(f"{amount} is not an amount of money", field="amount")
    if amount and amount.adjusted() >= _MAX_INTEGER_DIGITS:
        raise InvalidInput(
            f"{amount} {currency} is more than {Money(MAX_MINOR_UNITS, currency)}", field="amount"
        )
    scaled = amount.scaleb(exponent)
    if (amount and amount.adjusted() < -exponent) or scaled != scaled.to_integral_value():
        raise InvalidInput(
            f"{amount} has more decimals than {currency} allows ({exponent})", field="amount"
        )
    return check_bounded(int(scaled), currency, what=f"{amount} {currency}", field="amount")


@dataclass(frozen=True, slots=True)
class Money:
    """An immutable amount in integer minor units of one ISO 4217 currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise InvalidInput(
                f"amount must be an integer number of minor units, not {self.amount!r}",
                field="amount",
            )
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, amount: Decimal, currency: str) -> Money:
        """Exact conversion from major units (Decimal("12.50") SEK -> 1250)."""
        return cls(to_minor_units(amount, currency), currency)

    @property
    def exponent(self) -> int:
        return currency_exponent(self.currency)

    def as_decimal(self) -> Decimal:
        """The amount in major units, with exactly the currency's decimals."""
        return Decimal(self.amount).scaleb(-self.exponent)

    def _same_currency(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise InvalidInput(
                f"cannot combine {self.currency} with {other.currency}", field="currency"
            )
        return other

    def __add__(self, other: object) -> Money:
        return Money(self.amount + self._same_currency(other).amount, self.currency)

    def __sub__(self, other: object) -> Money:
        return Money(self.amount - self._same_currency(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: object) -> bool:
        return self.amount < self._same_currency(other).amount

    def __le__(self, other: object) -> bool:
        return self.amount <= self._same_currency(other).amount

    def __gt__(self, other: object) -> bool:
        return self.amount > self._same_currency(other).amount

    def __ge__(self, other: object) -> bool:
        return self.amount >= self._same_currency(other).amount

    def __bool__(self) -> bool:
        return self.amount != 0

    def format(self, language: str = "en") -> str:
        """For display: "1,234.50 SEK" in English, "1 234,50 SEK" in Swedish."""
        return (
            f"{format_decimal(self.as_decimal(), language, decimals=self.exponent)} {self.currency}"
        )

    def __str__(self) -> str:
        return self.format("en")


def format_decimal(value: Decimal, language: str = "en", *, decimals: int = 0) -> str:
    """A number as the reader writes it: thousands grouped ("1 250,50" and a real minus
    sign in Swedish, "1,250.50" in English), at least ``decimals`` decimals and every
    significant one beyond (never rounded)."""
    swedish = language.lower().startswith("sv")
    exponent = value.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) else 0
    number = numberformat.format(
        value,
        decimal_sep="," if swedish else ".",
        decimal_pos=max(decimals, places),
        grouping=3,
        thousand_sep="\u00a0" if swedish else ",",
        force_grouping=True,
        use_l10n=False,
    )
    return number.replace("-", "\u2212") if swedish else number


_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_ENGLISH_GROUPED = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]")


def parse_decimal(text: str, language: str = "en") -> Decimal:
    """A number as a reader types it, the inverse of ``format_decimal``: "1 482,44" or
    "1482.44" in Swedish, "1,482.44" or "1482.44" in English (spaces and a real minus sign
    allowed in both). A comma that is not an English thousands separator is a decimal
    comma, in both languages. InvalidInput naming ``amount`` for anything else (letters,
    exponents, two decimal marks)."""
    plain = _SPACES.sub("", text).replace("\u2212", "-")
    if _ENGLISH_GROUPED.fullmatch(plain) and not language.lower().startswith("sv"):
        plain = plain.replace(",", "")
    elif plain.count(",") == 1 and "." not in plain:
        plain = plain.replace(",", ".")
    if not _PLAIN_NUMBER.fullmatch(plain):
        raise InvalidInput(f"{text[:40]!r} is not an amount", field="amount")
    return Decimal(plain)


def check_bounded(minor: int, currency: str, *, what: str, field: str) -> int:
    """``minor`` if within ``MAX_MINOR_UNITS`` either way; else InvalidInput naming ``field``
    ("<what> is more than 10,000,000,000,000.00 SEK")."""
    if abs(minor) > MAX_MINOR_UNITS:
        raise InvalidInput(f"{what} is more than {Money(MAX_MINOR_UNITS, currency)}", field=field)
    return minor
