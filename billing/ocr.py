"""Swedish OCR payment references (Bankgirot "OCR-nummer").

A reference is 2-25 digits ending in a Luhn (modulus 10) check digit. With
"hard" length control, as banks use for variable-length references, the digit
before the check digit is the reference's total length modulo 10. Tillit builds
references from the invoice id, so they are unique across every series.
"""

from __future__ import annotations

from stdnum import luhn

from billing.exceptions import InvalidInput

MIN_LENGTH = 2
MAX_LENGTH = 25


def make_ocr_reference(base: int | str, *, length_digit: bool = True) -> str:
    """The reference for ``base`` digits: base [+ length digit] + Luhn check digit."""
    digits = str(base)
    if not digits.isdigit():
        raise InvalidInput(f"{base!r} is not a string of digits", field="ocr_reference")
    if length_digit:
        digits += str((len(digits) + 2) % 10)
    reference = digits + luhn.calc_check_digit(digits)
    if not MIN_LENGTH <= len(reference) <= MAX_LENGTH:
        raise InvalidInput(
            f"an OCR reference has {MIN_LENGTH}-{MAX_LENGTH} digits, not {len(reference)}",
            field="ocr_reference",
        )
    return reference


def validate_ocr_reference(reference: str, *, length_digit: bool = False) -> str:
    """The reference without spaces if valid; InvalidInput naming ``ocr_reference`` if not.

    ``length_digit=True`` also checks the length digit (hard length control).
    """
    compact = "".join(str(reference).split())
    if not compact.isdigit() or not MIN_LENGTH <= len(compact) <= MAX_LENGTH:
        raise InvalidInput(
            f"an OCR reference is {MIN_LENGTH}-{MAX_LENGTH} digits, not {reference!r}",
            field="ocr_reference",
        )
    if not luhn.is_valid(compact):
        raise InvalidInput(f"{reference!r} fails its check digit (Luhn)", field="ocr_reference")
    if length_digit and int(compact[-2]) != len(compact) % 10:
        raise InvalidInput(
            f"{reference!r} has the wrong length digit for {len(compact)} digits",
            field="ocr_reference",
        )
    return compact


def is_valid_ocr_reference(reference: str, *, length_digit: bool = False) -> bool:
    try:
        validate_ocr_reference(reference, length_digit=length_digit)
    except InvalidInput:
        return False
    return True
