"""Swedish OCR references: Luhn check digit and the optional length digit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.exceptions import InvalidInput
from billing.ocr import is_valid_ocr_reference, make_ocr_reference, validate_ocr_reference


def test_a_reference_ends_in_its_length_digit_and_luhn_check_digit() -> None:
    # 12345, length digit 7 (seven digits), Luhn over 123457 -> 4.
    assert make_ocr_reference(12345) == "1234574"


def test_a_bankgirot_style_reference_validates() -> None:
    assert validate_ocr_reference("1234 5674") == "12345674"


@given(st.integers(min_value=1, max_value=10**20))
def test_every_generated_reference_validates_with_hard_length_control(base: int) -> None:
    reference = make_ocr_reference(base)
    assert validate_ocr_reference(reference, length_digit=True) == reference


@pytest.mark.parametrize("reference", ["1234575", "1", "12a4", "1" * 26, ""])
def test_a_bad_reference_is_refused_naming_the_field(reference: str) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        validate_ocr_reference(reference)
    assert excinfo.value.field == "ocr_reference"


def test_a_wrong_length_digit_is_caught_by_hard_length_control() -> None:
    reference = make_ocr_reference(12345, length_digit=False)  # valid Luhn, no length digit
    assert is_valid_ocr_reference(reference)
    assert not is_valid_ocr_reference(reference, length_digit=True)
