"""Money: integer minor units beside an ISO 4217 currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.exceptions import InvalidInput, UnknownCurrency
from billing.money import Money, currency_exponent, format_decimal, parse_decimal


@pytest.mark.parametrize(
    ("currency", "exponent"), [("SEK", 2), ("EUR", 2), ("USD", 2), ("JPY", 0), ("KWD", 3)]
)
def test_currency_exponents_follow_iso_4217(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize("code", ["XYZ", "", "SEKK", "XAU", None])
def test_an_unknown_currency_is_refused_naming_the_currency_field(code: object) -> None:
    with pytest.raises(UnknownCurrency) as excinfo:
        Money(100, code)  # type: ignore[arg-type]
    assert excinfo.value.field == "currency"


def test_a_float_amount_is_refused() -> None:
    with pytest.raises(InvalidInput, match="amount"):
        Money(1.5, "SEK")  # type: ignore[arg-type]


def test_money_of_different_currencies_does_not_add() -> None:
    with pytest.raises(InvalidInput, match="currency"):
        Money(1, "SEK") + Money(1, "EUR")


def test_money_adds_and_compares_in_minor_units() -> None:
    assert Money(150, "sek") + Money(50, "SEK") == Money(200, "SEK")
    assert Money(1, "SEK") < Money(2, "SEK")


def test_from_decimal_is_exact_or_refused() -> None:
    assert Money.from_decimal(Decimal("12.50"), "SEK") == Money(1250, "SEK")
    assert Money.from_decimal(Decimal("1200"), "JPY") == Money(1200, "JPY")
    with pytest.raises(InvalidInput, match="decimals"):
        Money.from_decimal(Decimal("1.005"), "SEK")


def test_money_formats_for_english_and_swedish_readers() -> None:
    money = Money(123456789, "SEK")
    assert money.format("en") == "1,234,567.89 SEK"
    assert money.format("sv") == "1\u00a0234\u00a0567,89 SEK"
    assert str(Money(5, "JPY")) == "5 JPY"


@pytest.mark.parametrize(
    ("value", "language", "decimals", "shown"),
    [
        ("1250.5000", "sv", 2, "1\u00a0250,50"),
        ("1250.5000", "en", 2, "1,250.50"),
        ("3.5000", "sv", 0, "3,5"),
        ("1000", "sv", 0, "1\u00a0000"),
        ("0.1234", "en", 2, "0.1234"),  # never rounded
        ("-12.5", "sv", 2, "\u221212,50"),
        ("25.00", "en", 0, "25"),
    ],
)
def test_format_decimal_groups_and_keeps_every_significant_decimal(
    value: str, language: str, decimals: int, shown: str
) -> None:
    assert format_decimal(Decimal(value), language, decimals=decimals) == shown


def test_an_amount_beyond_what_the_platform_holds_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as excinfo:
        Money.from_decimal(Decimal("10000000000000.01"), "SEK")
    assert excinfo.value.field == "amount"
    assert Money.from_decimal(Decimal("10000000000000.00"), "SEK").amount == 10**15


@pytest.mark.parametrize(
    ("typed", "language", "value"),
    [
        ("1 482,44", "sv", "1482.44"),
        ("1\u00a0482,44", "sv", "1482.44"),
        ("1482.44", "sv", "1482.44"),
        ("1,482.44", "en", "1482.44"),
        ("1482.44", "en", "1482.44"),
        ("1482,44", "en", "1482.44"),  # a decimal comma, typed in the English portal
        ("12,345,678.90", "en", "12345678.90"),
        (" 100 ", "en", "100"),
        ("\u22125", "sv", "-5"),
    ],
)
def test_an_amount_is_read_as_the_reader_writes_it(typed: str, language: str, value: str) -> None:
    assert parse_decimal(typed, language) == Decimal(value)


def test_an_english_thousands_comma_is_a_decimal_comma_in_swedish() -> None:
    # "1,482" is 1482 to an English reader and 1.482 to a Swedish one (then too many
    # decimals for SEK): never silently a hundred times the amount.
    assert parse_decimal("1,482", "en") == Decimal("1482")
    assert parse_decimal("1,482", "sv") == Decimal("1.482")


@pytest.mark.parametrize(
    "typed", ["", "abc", "1e3", "Infinity", "NaN", "1.482,44", "1,48,2", "1..2", "--1", "1 2,3,4"]
)
@pytest.mark.parametrize("language", ["sv", "en"])
def test_anything_else_is_refused_naming_the_amount(typed: str, language: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_decimal(typed, language)
    assert refused.value.field == "amount"


@given(
    amount=st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False),
    language=st.sampled_from(["sv", "en"]),
)
def test_what_format_decimal_writes_parse_decimal_reads_back(
    amount: Decimal, language: str
) -> None:
    assert parse_decimal(format_decimal(amount, language, decimals=2), language) == amount
