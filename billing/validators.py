"""Field validators shared by the models (admin forms) and the services.

Each raises django's ValidationError for a form; the services turn it into a
BillingError naming the same field (see ``billing.services._base._validate``).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from types import ModuleType

import pycountry
import stdnum
from django.conf import settings
from django.core.exceptions import ValidationError
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError

from billing.exceptions import BillingError
from billing.money import invoice_currency

# National schemes python-stdnum validates, by country and customer kind. A
# country without one here accepts the number as given (trimmed).
_COMPANY_SCHEMES = {
    "SE": "se.orgnr",
    "NO": "no.orgnr",
    "DK": "dk.cvr",
    "FI": "fi.ytunnus",
    "EE": "ee.registrikood",
    "FR": "fr.siren",
    "AT": "at.businessid",
    "IS": "is_.kennitala",
}
_PERSON_SCHEMES = {
    "SE": "se.personnummer",
    "NO": "no.fodselsnummer",
    "DK": "dk.cpr",
    "FI": "fi.hetu",
    "EE": "ee.ik",
    "IS": "is_.kennitala",
}


@cache
def _countries() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


def validate_country(value: str) -> None:
    """ISO 3166-1 alpha-2, upper case ("SE")."""
    if value not in _countries():
        raise ValidationError(
            "%(value)s is not an ISO 3166-1 alpha-2 country code", params={"value": value}
        )


def validate_currency(value: str) -> None:
    """ISO 4217 code with a usable minor unit that an invoice can state ("SEK"; not KWD)."""
    try:
        if invoice_currency(value) != value:
            raise ValidationError("%(value)s must be upper case", params={"value": value})
    except BillingError as exc:
        raise ValidationError(exc.message) from exc


def _scheme(kind: str, country: str) -> ModuleType | None:
    table = _PERSON_SCHEMES if kind == "person" else _COMPANY_SCHEMES
    name = table.get(country)
    if name is None:
        return None
    module: ModuleType = __import__(f"stdnum.{name}", fromlist=["validate"])
    return module


def normalize_identity_number(number: str, *, kind: str, country: str) -> str:
    """The number in its scheme's display format; ValidationError if the checksum fails."""
    number = number.strip()
    if not number:
        return ""
    module = _scheme(kind, country)
    if module is None:
        return number
    try:
        compact = module.validate(number)
    except StdnumError as exc:
        label = "personal" if kind == "person" else "organisation"
        raise ValidationError(
            "%(number)s is not a valid %(label)s number for %(country)s (%(reason)s)",
            params={"number": number, "label": label, "country": country, "reason": exc},
        ) from exc
    formatter = getattr(module, "format", None)
    return str(formatter(compact)) if formatter else str(compact)


def normalize_vat_id(vat_id: str) -> str:
    """A VAT id with its country prefix ("SE556036079301"), checked by python-stdnum."""
    vat_id = vat_id.strip().upper().replace(" ", "")
    if not vat_id:
        return ""
    prefix = vat_id[:2].lower()
    try:
        if prefix in eu_vat.MEMBER_STATES or prefix == "el":
            return str(eu_vat.validate(vat_id))
        module = stdnum.get_cc_module(prefix, "vat")
        if module is not None:
            return str(module.validate(vat_id))
    except StdnumError as exc:
        raise ValidationError(
            "%(value)s is not a valid VAT number (%(reason)s)",
            params={"value": vat_id, "reason": exc},
        ) from exc
    raise ValidationError(
        "%(value)s does not start with a known country prefix (e.g. SE, DE, NO)",
        params={"value": vat_id},
    )


def validate_vat_id(value: str) -> None:
    normalize_vat_id(value)


def configured_vat_rates() -> frozenset[Decimal]:
    """settings.BILLING_VAT_RATES as Decimals; read on each call so tests may override it."""
    return frozenset(Decimal(str(rate)) for rate in settings.BILLING_VAT_RATES)
