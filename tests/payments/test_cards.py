"""Card validation: Luhn, brand by prefix, expiry, CVC; errors name the field."""

from __future__ import annotations

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn

from payments.vault.cards import Brand, Card, detect_brand, validate_card
from payments.vault.exceptions import InvalidCard


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111111111111111", Brand.VISA),
        ("5555555555554444", Brand.MASTERCARD),
        ("2223003122003222", Brand.MASTERCARD),
        ("378282246310005", Brand.AMEX),
        ("6011111111111117", Brand.DISCOVER),
        ("3530111333300000", Brand.JCB),
        ("36227206271667", Brand.DINERS),
        ("6200000000000005", Brand.UNIONPAY),
    ],
)
def test_each_known_brand_is_detected_by_prefix(number: str, brand: Brand) -> None:
    valid = validate_card(
        Card.from_input(
            number=number, expiry="12/39", cvc="1234"[: 4 if brand == Brand.AMEX else 3]
        )
    )
    assert valid.brand == brand
    assert valid.last4 == number[-4:]


def test_spaces_and_dashes_between_groups_are_accepted() -> None:
    valid = validate_card(Card.from_input(number="4111 1111-1111 1111", expiry="1/2039", cvc="123"))
    assert valid.number == "4111111111111111"
    assert (valid.exp_month, valid.exp_year) == (1, 2039)


@pytest.mark.parametrize(
    ("number", "expiry", "cvc", "field"),
    [
        ("4111111111111112", "12/39", "123", "number"),  # bad check digit
        ("9111111111111110", "12/39", "123", "number"),  # unknown brand (valid Luhn)
        ("4111-abcd", "12/39", "123", "number"),
        ("", "12/39", "123", "number"),
        ("4111111111111111", "13/39", "123", "expiry"),
        ("4111111111111111", "1239", "123", "expiry"),
        ("4111111111111111", "12/39", "12", "cvc"),
        ("378282246310005", "12/39", "123", "cvc"),  # Amex needs four digits
        ("4111111111111111", "12/39", "12a", "cvc"),
    ],
)
def test_bad_card_data_is_refused_naming_the_field(
    number: str, expiry: str, cvc: str, field: str
) -> None:
    with pytest.raises(InvalidCard) as caught:
        validate_card(Card.from_input(number=number, expiry=expiry, cvc=cvc))
    assert caught.value.field == field
    assert "4111111111111" not in str(caught.value)


@time_machine.travel("2030-06-15 12:00Z", tick=False)
def test_a_card_is_valid_through_its_expiry_month_and_refused_after() -> None:
    validate_card(Card.from_input(number="4111111111111111", expiry="06/30", cvc="123"))
    with pytest.raises(InvalidCard, match="expired") as caught:
        validate_card(Card.from_input(number="4111111111111111", expiry="05/30", cvc="123"))
    assert caught.value.field == "expiry"


def test_card_repr_never_shows_the_number_or_cvc() -> None:
    text = repr(Card.from_input(number="4111111111111111", expiry="12/39", cvc="737"))
    assert "4111111111111111" not in text
    assert "737" not in text


@settings(deadline=None)
@given(body=st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_any_visa_with_a_correct_check_digit_is_accepted(body: str) -> None:
    partial = "4" + body
    number = partial + luhn.calc_check_digit(partial)
    assert detect_brand(number) == Brand.VISA
    assert validate_card(Card.from_input(number=number, expiry="12/39", cvc="123")).number == number


@settings(deadline=None)
@given(body=st.text(alphabet="0123456789", min_size=14, max_size=14), wrong=st.integers(1, 9))
def test_any_visa_with_a_wrong_check_digit_is_refused(body: str, wrong: int) -> None:
    partial = "4" + body
    bad = (int(luhn.calc_check_digit(partial)) + wrong) % 10
    with pytest.raises(InvalidCard) as caught:
        validate_card(Card.from_input(number=partial + str(bad), expiry="12/39", cvc="123"))
    assert caught.value.field == "number"
