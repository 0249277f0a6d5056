"""Customers, portal accounts and the company profile."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from audit import record
from billing.exceptions import (
    InvalidInput,
)
from billing.models import (
    CompanyProfile,
    Customer,
    Language,
    PortalAccount,
)
from billing.money import invoice_currency
from billing.services._base import (
    COMPANY_FIELDS,
    CUSTOMER_FIELDS,
    Actor,
    _locked,
    _unknown_fields,
    _validate,
)
from security.selectors import is_staff_account


def create_customer(*, by: Actor, **fields: Any) -> Customer:
    """Create a customer whose numbers, country, language and currency are valid."""
    _unknown_fields(fields, CUSTOMER_FIELDS)
    customer = Customer(**fields)
    if "currency" in fields:
        customer.currency = invoice_currency(fields["currency"])
    _validate(customer)
    with transaction.atomic():
        customer.save(force_insert=True)
        record("customer.created", actor=by, obj=customer, name=customer.name)
    return customer


def update_customer(customer: Customer, *, by: Actor, **changes: Any) -> Customer:
    """Change a customer's details; past invoices keep the buyer snapshot they froze."""
    _unknown_fields(changes, CUSTOMER_FIELDS)
    if "currency" in changes:
        changes["currency"] = invoice_currency(changes["currency"])
    with transaction.atomic():
        locked = _locked(customer)
        changed = sorted(k for k, v in changes.items() if getattr(locked, k) != v)
        for key, value in changes.items():
            setattr(locked, key, value)
        _validate(locked)
        locked.save()
        record("customer.updated", actor=by, obj=locked, fields=changed)
    return locked


def check_language(code: object) -> str:
    """``code`` when it is a language the site speaks (en, sv); InvalidInput naming
    ``language`` otherwise."""
    if isinstance(code, str) and code in Language.values:
        return code
    shown = str(code)[:20]
    raise InvalidInput(
        _("%(code)s is not a language of this site; choose %(choices)s.")
        % {"code": f"“{shown}”", "choices": " / ".join(Language.labels)},
        field="language",
    )


def set_customer_language(
    customer: Customer, *, language: str, by: Actor, request: HttpRequest | None = None
) -> Customer:
    """The customer's pages and emails are in ``language`` from now on (en or sv)."""
    language = check_language(language)
    with transaction.atomic():
        locked = _locked(customer)
        if locked.language == language:
            return locked
        previous = locked.language
        locked.language = language
        locked.save(update_fields=["language", "updated_at"])
        record(
            "customer.language_changed",
            actor=by,
            obj=locked,
            request=request,
            language=language,
            previous=previous,
        )
    return locked


def link_portal_account(*, user: Any, customer: Customer, by: Actor) -> PortalAccount:
    """Give a user portal access to exactly this customer's invoices (one customer per user).

    Never a staff account: a staff member linked to a customer could pay with the
    customer's saved cards (the portal refuses staff sessions too).
    """
    with transaction.atomic():
        locked = type(user)._default_manager.select_for_update().get(pk=user.pk)
        if is_staff_account(locked):
            raise InvalidInput(
                f"{locked} is a staff account; staff can never have a portal account",
                field="user",
            )
        if PortalAccount.objects.select_for_update().filter(user=locked).exists():
            raise InvalidInput(f"{locked} already has a portal account", field="user")
        account = PortalAccount.objects.create(user=locked, customer=customer)
        record(
            "customer.portal_account_linked",
            actor=by,
            obj=account,
            user_id=locked.pk,
            username=locked.get_username(),
            customer_id=customer.pk,
            customer=customer.name,
        )
    return account


def update_company_profile(*, by: Actor, **changes: Any) -> CompanyProfile:
    """Create or change the seller profile; finalized invoices keep their seller snapshot."""
    _unknown_fields(changes, COMPANY_FIELDS)
    with transaction.atomic():
        profile = CompanyProfile.objects.select_for_update().filter(singleton=1).first()
        created = profile is None
        profile = profile or CompanyProfile(singleton=1)
        changed = sorted(k for k, v in changes.items() if getattr(profile, k) != v)
        for key, value in changes.items():
            setattr(profile, key, value)
        _validate(profile)
        profile.save()
        record(
            "company.profile_created" if created else "company.profile_updated",
            actor=by,
            obj=profile,
            fields=changed,
        )
    return profile
