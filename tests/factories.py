"""Named people and things every test can use (imported as fixtures by conftest.py).

The seller (``company``), customer Alice's company and customer Bob's company
(Bob must never see Alice's invoices), a billing clerk, an accountant and an
outsider with no rights. ``make_draft_invoice`` builds a draft with lines
through the billing services.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest

from billing.models import CompanyProfile, Customer, Invoice, PortalAccount
from security.models import User

LineSpec = dict[str, Any]


def make_user(username: str, *, is_staff: bool = False, **extra: Any) -> User:
    return User.objects.create_user(
        username=username,
        email=f"{username}@example.test",
        password="correct horse battery staple",
        is_staff=is_staff,
        **extra,
    )


def with_role(user: User, role: str) -> User:
    """Put the user in the role's group (as sync_roles keeps it); a fresh copy of the user,
    so no permission read before is still cached on it."""
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def make_company(**overrides: Any) -> CompanyProfile:
    values: dict[str, Any] = {
        "legal_name": "Tillit Demo AB",
        "organisation_number": "556036-0793",
        "vat_number": "SE556036079301",
        "address_line1": "Storgatan 1",
        "postal_code": "111 22",
        "city": "Stockholm",
        "country": "SE",
        "email": "billing@tillit.example",
        "phone": "+46 8 123 456",
        "bankgiro": "5050-1055",
        "iban": "SE4550000000058398257466",
        "bic": "ESSESESS",
    }
    values.update(overrides)
    company, _ = CompanyProfile.objects.update_or_create(singleton=1, defaults=values)
    return company


def ensure_default_series() -> None:
    """The F and K series of migration 0003 (a transactional test's flush removes them)."""
    from billing.models import InvoiceSeries

    for code, kind in (("F", "invoice"), ("K", "credit_note")):
        InvoiceSeries.objects.get_or_create(code=code, defaults={"kind": kind, "is_default": True})


@pytest.fixture
def default_series(db: None) -> None:
    """The default series, for a transactional test (ask for it before the invoices)."""
    ensure_default_series()


def make_customer(name: str, **overrides: Any) -> Customer:
    values: dict[str, Any] = {
        "name": name,
        "kind": Customer.Kind.COMPANY,
        "email": f"invoices@{name.split()[0].lower()}.example",
        "address_line1": "Kungsgatan 2",
        "postal_code": "411 19",
        "city": "Göteborg",
        "country": "SE",
        "language": "sv",
        "currency": "SEK",
    }
    values.update(overrides)
    return Customer.objects.create(**values)


def line(
    description: str = "Consulting",
    quantity: str | Decimal = "1",
    unit_price: str | Decimal = "100.00",
    vat_category: str = "S",
    vat_rate: str | Decimal = "25",
    unit: str = "",
) -> LineSpec:
    """A line specification for services.create_draft_invoice / add_invoice_line."""
    return {
        "description": description,
        "quantity": Decimal(quantity),
        "unit_price": Decimal(unit_price),
        "vat_category": vat_category,
        "vat_rate": Decimal(vat_rate),
        "unit": unit,
    }


@pytest.fixture
def company(db: None) -> CompanyProfile:
    return make_company()


@pytest.fixture
def alice_company(db: None) -> Customer:
    return make_customer("Alice Konsult AB", identity_number="556677-8899", vat_id="SE556677889901")


@pytest.fixture
def bob_company(db: None) -> Customer:
    return make_customer(
        "Bob Bygg GmbH",
        country="DE",
        language="en",
        currency="EUR",
        vat_id="DE136695976",
        email="rechnung@bob.example",
        address_line1="Hauptstraße 5",
        postal_code="10115",
        city="Berlin",
    )


@pytest.fixture
def alice(db: None, alice_company: Customer) -> User:
    """Customer Alice: a portal user who sees only her company's invoices."""
    user = make_user("alice")
    PortalAccount.objects.create(user=user, customer=alice_company)
    return user


@pytest.fixture
def bob(db: None, bob_company: Customer) -> User:
    """Customer Bob: a portal user who must never see Alice's invoices."""
    user = make_user("bob")
    PortalAccount.objects.create(user=user, customer=bob_company)
    return user


@pytest.fixture
def clerk(db: None) -> User:
    """A billing clerk (staff)."""
    return make_user("clerk", is_staff=True)


@pytest.fixture
def accountant(db: None) -> User:
    """An accountant (staff, reads and downloads)."""
    return make_user("accountant", is_staff=True)


@pytest.fixture
def outsider(db: None) -> User:
    """Signed in, but neither staff nor linked to any customer."""
    return make_user("outsider")


@pytest.fixture
def make_draft_invoice(company: CompanyProfile, clerk: User) -> Callable[..., Invoice]:
    """Build a draft invoice with lines through the services; default two lines."""
    from billing import services

    def build(
        customer: Customer, lines: Sequence[LineSpec] | None = None, **fields: Any
    ) -> Invoice:
        specs = (
            list(lines)
            if lines is not None
            else [line("Consulting", "2", "1000.00"), line("Travel", "1", "250.50", vat_rate="6")]
        )
        return services.create_draft_invoice(customer=customer, lines=specs, by=clerk, **fields)

    return build


@pytest.fixture
def make_open_invoice(
    make_draft_invoice: Callable[..., Invoice], clerk: User
) -> Callable[..., Invoice]:
    """Build and finalize an invoice through the services."""
    from billing import services

    def build(
        customer: Customer, lines: Sequence[LineSpec] | None = None, **fields: Any
    ) -> Invoice:
        draft = make_draft_invoice(customer, lines, **fields)
        return services.finalize_invoice(draft, by=clerk)

    return build


def audit_events(action: str, obj: Any = None) -> list[Any]:
    """The audit events with this action (about ``obj`` if given), oldest first."""
    from audit.models import AuditEvent

    events = AuditEvent.objects.filter(action=action)
    if obj is not None:
        events = events.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
    return list(events.order_by("seq"))


def table_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every billing row, to assert that refused input changed nothing."""
    from billing.models import InvoiceLine, InvoiceSeries

    return {
        "invoices": sorted(Invoice.objects.values_list()),
        "lines": sorted(InvoiceLine.objects.values_list()),
        "series": sorted(InvoiceSeries.objects.values_list()),
        "customers": sorted(Customer.objects.values_list()),
    }
