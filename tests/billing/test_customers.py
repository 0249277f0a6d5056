"""Customers and the company profile: checked numbers, audited changes."""

from __future__ import annotations

import pytest

from billing import services
from billing.exceptions import InvalidInput, UnknownCurrency
from billing.models import Customer, PortalAccount
from security.models import User
from tests.factories import audit_events, make_user

pytestmark = pytest.mark.django_db


def test_create_customer_formats_the_organisation_number_and_audits(clerk: User) -> None:
    customer = services.create_customer(
        by=clerk,
        name="Cecilia AB",
        email="a@cecilia.example",
        country="SE",
        identity_number="5566778899",
        vat_id="se 5566 7788 9901",
        currency="sek",
    )
    assert customer.identity_number == "556677-8899"
    assert customer.currency == "SEK"
    [event] = audit_events("customer.created", customer)
    assert event.actor_id == str(clerk.pk)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"identity_number": "556677-8898"}, "identity_number"),
        ({"kind": "person", "identity_number": "19800101-0002"}, "identity_number"),
        ({"vat_id": "SE556677889902"}, "vat_id"),
        ({"country": "XX"}, "country"),
        ({"email": "not-an-email"}, "email"),
        ({"language": "de"}, "language"),
        ({"name": "Nul\x00 AB"}, "name"),  # PostgreSQL text cannot hold one
        ({"address_line1": "Gatan 1\x00"}, "address_line1"),
    ],
)
def test_create_customer_refuses_bad_input_naming_the_field(
    clerk: User, fields: dict[str, str], field: str
) -> None:
    values = {"name": "Bad AB", "email": "x@bad.example", "country": "SE", **fields}
    with pytest.raises(InvalidInput) as excinfo:
        services.create_customer(by=clerk, **values)
    assert excinfo.value.field == field
    assert not Customer.objects.exists()
    assert not audit_events("customer.created")


def test_create_customer_refuses_an_unknown_currency(clerk: User) -> None:
    with pytest.raises(UnknownCurrency) as excinfo:
        services.create_customer(by=clerk, name="X", email="x@x.example", currency="XYZ")
    assert excinfo.value.field == "currency"
    assert not Customer.objects.exists()


def test_a_german_company_is_checked_by_its_vat_id(clerk: User) -> None:
    customer = services.create_customer(
        by=clerk, name="Bob GmbH", email="b@bob.example", country="DE", vat_id="DE136695976"
    )
    assert customer.vat_id == "DE136695976"


def test_update_customer_records_the_changed_fields(clerk: User, alice_company: Customer) -> None:
    updated = services.update_customer(alice_company, by=clerk, city="Malmö", language="en")
    assert (updated.city, updated.language) == ("Malmö", "en")
    [event] = audit_events("customer.updated", alice_company)
    assert event.details["fields"] == ["city", "language"]


def test_update_customer_refuses_a_read_only_field(clerk: User, alice_company: Customer) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        services.update_customer(alice_company, by=clerk, created_at=None)
    assert excinfo.value.field == "created_at"


def test_update_company_profile_creates_then_updates_the_one_profile(clerk: User) -> None:
    profile = services.update_company_profile(
        by=clerk,
        legal_name="Tillit AB",
        organisation_number="556036-0793",
        address_line1="Storgatan 1",
        postal_code="111 22",
        city="Stockholm",
        email="billing@tillit.example",
    )
    again = services.update_company_profile(by=clerk, city="Uppsala")
    assert again.pk == profile.pk and again.city == "Uppsala"
    assert audit_events("company.profile_created", profile)
    assert audit_events("company.profile_updated", profile)[0].details["fields"] == ["city"]


def test_link_portal_account_gives_a_user_one_customer(
    clerk: User, alice_company: Customer, bob_company: Customer
) -> None:
    user = make_user("carol")
    account = services.link_portal_account(user=user, customer=alice_company, by=clerk)
    with pytest.raises(InvalidInput, match="already"):
        services.link_portal_account(user=user, customer=bob_company, by=clerk)
    assert PortalAccount.objects.get(user=user).customer == alice_company
    assert audit_events("customer.portal_account_linked", account)


def test_update_company_profile_refuses_a_bad_swedish_organisation_number(clerk: User) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        services.update_company_profile(
            by=clerk,
            legal_name="Fel AB",
            organisation_number="556036-0794",
            address_line1="Storgatan 1",
            postal_code="111 22",
            city="Stockholm",
            email="billing@fel.example",
        )
    assert excinfo.value.field == "organisation_number"
    assert not audit_events("company.profile_created")
