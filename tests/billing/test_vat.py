"""EN 16931 VAT: line nets half-up, VAT per (category, rate) on the sum of nets."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from billing.exceptions import InvalidQuantity, InvalidVatRate
from billing.vat import check_quantity, check_vat, compute_totals, line_net_amount, vat_amount


def test_a_line_net_rounds_half_up_to_the_minor_unit() -> None:
    assert line_net_amount(Decimal("3"), Decimal("0.125"), "SEK") == 38  # 0.375 -> 0.38
    assert line_net_amount(Decimal("1"), Decimal("0.005"), "SEK") == 1  # half goes up
    assert line_net_amount(Decimal("1"), Decimal("0.0049"), "SEK") == 0
    assert line_net_amount(Decimal("2.5"), Decimal("101"), "JPY") == 253  # 252.5 -> 253


def test_vat_is_computed_on_the_sum_of_nets_not_per_line() -> None:
    # Three lines of 0.10 SEK at 25%: per line VAT would round 2.5 öre up three times
    # (9 öre); on the sum (30 öre) it is 7.5 -> 8 öre.
    totals = compute_totals([("S", Decimal("25"), 10)] * 3)
    assert (totals.net, totals.vat, totals.gross) == (30, 8, 38)


def test_each_category_and_rate_is_its_own_vat_group() -> None:
    totals = compute_totals(
        [
            ("S", Decimal("25"), 10000),
            ("S", Decimal("12"), 5000),
            ("S", Decimal("25.00"), 1000),
            ("AE", Decimal("0"), 7000),
        ]
    )
    groups = {(g.category, g.rate): (g.taxable_amount, g.vat_amount) for g in totals.breakdown}
    assert groups == {
        ("S", Decimal("25")): (11000, 2750),
        ("S", Decimal("12")): (5000, 600),
        ("AE", Decimal("0")): (7000, 0),
    }
    assert totals.gross == 23000 + 3350


def test_vat_amount_rounds_half_up() -> None:
    assert vat_amount(2, Decimal("25")) == 1  # 0.5 -> 1
    assert vat_amount(1, Decimal("25")) == 0


@pytest.mark.parametrize("category", ["Z", "E", "AE", "K", "G"])
def test_zero_rated_categories_take_only_zero(category: str) -> None:
    assert check_vat(category, "0") == 0
    with pytest.raises(InvalidVatRate) as excinfo:
        check_vat(category, "25")
    assert excinfo.value.field == "vat_rate"


@pytest.mark.parametrize("rate", ["0", "20", "-25", "abc", "NaN"])
def test_a_standard_rate_outside_the_configured_rates_is_refused(rate: str) -> None:
    with pytest.raises(InvalidVatRate) as excinfo:
        check_vat("S", rate)
    assert excinfo.value.field == "vat_rate"


def test_the_configured_rates_come_from_settings() -> None:
    with override_settings(BILLING_VAT_RATES=["20", "0"]):
        assert check_vat("S", "20") == 20
        with pytest.raises(InvalidVatRate, match="BILLING_VAT_RATES"):
            check_vat("S", "25")


def test_an_unknown_category_is_refused_naming_its_field() -> None:
    with pytest.raises(InvalidVatRate) as excinfo:
        check_vat("X", "25")
    assert excinfo.value.field == "vat_category"


@pytest.mark.parametrize("quantity", ["0", "-1", "abc", "Infinity", 1.5])
def test_zero_negative_or_non_decimal_quantities_are_refused(quantity: object) -> None:
    with pytest.raises(InvalidQuantity) as excinfo:
        check_quantity(quantity)
    assert excinfo.value.field == "quantity"


_quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("10000"), places=3)
_prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=4)
_groups = st.sampled_from(
    [("S", Decimal("25")), ("S", Decimal("12")), ("S", Decimal("6")), ("Z", Decimal("0"))]
)
_lines = st.lists(st.tuples(_quantities, _prices, _groups), min_size=1, max_size=12)


@given(_lines, st.sampled_from(["SEK", "EUR", "JPY", "KWD"]))
def test_totals_invariants_hold_for_any_lines(
    lines: list[tuple[Decimal, Decimal, tuple[str, Decimal]]], currency: str
) -> None:
    nets = [
        (category, rate, line_net_amount(quantity, price, currency))
        for quantity, price, (category, rate) in lines
    ]
    totals = compute_totals(nets)
    assert totals.net == sum(net for _, _, net in nets)
    assert totals.net + totals.vat == totals.gross
    assert totals.vat == sum(g.vat_amount for g in totals.breakdown)
    for group in totals.breakdown:
        exact = Decimal(group.taxable_amount) * group.rate / 100
        assert abs(Decimal(group.vat_amount) - exact) <= Decimal("0.5")
