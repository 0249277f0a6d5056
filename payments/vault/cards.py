"""Card data and its validation: Luhn, brand by prefix, expiry, CVC.

Nothing here stores or logs anything; errors name the field and never echo the
number or the CVC.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from stdnum import luhn

from payments.vault.exceptions import InvalidCard


class Brand(models.TextChoices):
    VISA = "visa", "Visa"
    MASTERCARD = "mastercard", "Mastercard"
    AMEX = "amex", "American Express"
    DISCOVER = "discover", "Discover"
    JCB = "jcb", "JCB"
    DINERS = "diners", "Diners Club"
    UNIONPAY = "unionpay", "UnionPay"


# (brand, inclusive prefix ranges as (low, high) strings of equal length, allowed lengths)
_BRANDS: list[tuple[Brand, list[tuple[str, str]], frozenset[int]]] = [
    (Brand.AMEX, [("34", "34"), ("37", "37")], frozenset({15})),
    (Brand.DINERS, [("300", "305"), ("36", "36"), ("38", "39")], frozenset(range(14, 20))),
    (Brand.JCB, [("3528", "3589")], frozenset(range(16, 20))),
    (Brand.VISA, [("4", "4")], frozenset({13, 16, 19})),
    (Brand.MASTERCARD, [("51", "55"), ("2221", "2720")], frozenset({16})),
    (
        Brand.DISCOVER,
        [("6011", "6011"), ("644", "649"), ("65", "65")],
        frozenset(range(16, 20)),
    ),
    (Brand.UNIONPAY, [("62", "62")], frozenset(range(16, 20))),
]

_SEPARATORS = re.compile(r"[ \-]")
_DIGITS = re.compile(r"^[0-9]+$")
_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")


def detect_brand(number: str) -> Brand | None:
    """The brand whose prefix range and length match ``number`` (digits only)."""
    for brand, ranges, lengths in _BRANDS:
        if len(number) not in lengths:
            continue
        for low, high in ranges:
            if low <= number[: len(low)] <= high:
                return brand
    return None


def normalize_number(raw: object) -> str:
    """Digits only; spaces and dashes are allowed between groups."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidCard(_("enter the card number"), field="number")
    number = _SEPARATORS.sub("", raw.strip())
    if not _DIGITS.match(number) or not 12 <= len(number) <= 19:
        raise InvalidCard(_("a card number has 12 to 19 digits"), field="number")
    if not luhn.is_valid(number):
        raise InvalidCard(_("the card number is not valid (check digit)"), field="number")
    if detect_brand(number) is None:
        raise InvalidCard(_("the card brand is not accepted"), field="number")
    return number


def parse_expiry(raw: object) -> tuple[int, int]:
    """(month, four-digit year) from 'MM/YY' or 'MM/YYYY'."""
    match = _EXPIRY.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise InvalidCard(_("enter the expiry as MM/YY"), field="expiry")
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise InvalidCard(_("the expiry month must be 01 to 12"), field="expiry")
    return month, year


def check_expiry(month: int, year: int, *, today: datetime.date | None = None) -> None:
    """A card is valid through the last day of its expiry month."""
    today = today or timezone.now().date()
    if not 1 <= month <= 12:
        raise InvalidCard(_("the expiry month must be 01 to 12"), field="expiry")
    if (year, month) < (today.year, today.month):
        raise InvalidCard(_("the card has expired"), field="expiry")
    if year > today.year + 20:
        raise InvalidCard(_("the expiry year is too far in the future"), field="expiry")


def check_cvc(cvc: object, brand: Brand) -> str:
    """Three digits (four for American Express); never stored."""
    wanted = 4 if brand == Brand.AMEX else 3
    if not isinstance(cvc, str) or not _DIGITS.match(cvc.strip()) or len(cvc.strip()) != wanted:
        raise InvalidCard(
            _("the security code has %(digits)s digits") % {"digits": wanted}, field="cvc"
        )
    return cvc.strip()


@dataclass(frozen=True)
class Card:
    """A card as entered. ``repr`` hides the number and the CVC."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(default="", repr=False)

    @classmethod
    def from_input(cls, *, number: object, expiry: object, cvc: object = "") -> Card:
        """Parse form-style input ('4111 1111 1111 1111', '12/30', '123')."""
        month, year = parse_expiry(expiry)
        return cls(
            number=number if isinstance(number, str) else "",
            exp_month=month,
            exp_year=year,
            cvc=cvc if isinstance(cvc, str) else "",
        )


@dataclass(frozen=True)
class ValidCard:
    """A card that passed every check: the normalized number, its brand, expiry."""

    number: str = field(repr=False)
    brand: Brand
    exp_month: int
    exp_year: int

    @property
    def last4(self) -> str:
        return self.number[-4:]


def validate_card(card: Card, *, require_cvc: bool = True) -> ValidCard:
    """Check number (Luhn, length, brand), expiry (not past) and CVC; drop the CVC."""
    number = normalize_number(card.number)
    brand = detect_brand(number)
    assert brand is not None  # normalize_number refused unknown brands
    check_expiry(card.exp_month, card.exp_year)
    if require_cvc or card.cvc:
        check_cvc(card.cvc, brand)
    return ValidCard(number=number, brand=brand, exp_month=card.exp_month, exp_year=card.exp_year)
