"""The customers API: a customer's token reads its own customer; an integration lists,
creates and changes customers through ``billing.services`` (which check every field)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from billing.models import Customer
from tests.api.conftest import ALL_SCOPES, Api, error_fields
from tests.factories import audit_events, table_snapshot

pytestmark = pytest.mark.django_db

NEW = {"name": "Cecilia Café AB", "email": "faktura@cecilia.example", "currency": "SEK"}


def test_alice_reads_her_customer_and_no_other(
    alice_api: Api, alice_company: Customer, bob_company: Customer
) -> None:
    assert [c["id"] for c in alice_api.get("customers").json()["results"]] == [alice_company.pk]
    assert alice_api.get(f"customers/{alice_company.pk}").json()["name"] == alice_company.name
    assert alice_api.get(f"customers/{bob_company.pk}").status_code == 404


def test_alice_cannot_create_or_change_customers(alice_api: Api, alice_company: Customer) -> None:
    before = table_snapshot()

    assert alice_api.post("customers", NEW).status_code == 403
    assert alice_api.patch(f"customers/{alice_company.pk}", {"city": "Malmö"}).status_code == 403
    assert table_snapshot() == before


def test_an_integration_creates_and_changes_a_customer(erp_api: Api) -> None:
    created = erp_api.post("customers", NEW)
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]

    changed = erp_api.patch(f"customers/{pk}", {"city": "Malmö", "language": "sv"})

    assert changed.status_code == 200, changed.json()
    customer = Customer.objects.get(pk=pk)
    assert (customer.name, customer.city, customer.language) == (NEW["name"], "Malmö", "sv")
    assert audit_events("customer.created", customer)
    assert audit_events("customer.updated", customer)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW, "email": "not an address"}, "email"),
        ({**NEW, "country": "XX"}, "country"),
        ({**NEW, "currency": "ABC"}, "currency"),
        ({**NEW, "vat_id": "SE123"}, "vat_id"),
        ({**NEW, "balance": 0}, "balance"),
        ({**NEW, "payment_terms_days": "thirty"}, "payment_terms_days"),
        ({"email": "a@b.example"}, "name"),
    ],
)
def test_bad_customer_input_names_the_field_and_changes_nothing(
    erp_api: Api, body: dict[str, Any], field: str
) -> None:
    before = table_snapshot()

    response = erp_api.post("customers", body)

    assert response.status_code == 400, response.json()
    assert field in error_fields(response)
    assert table_snapshot() == before


@pytest.mark.parametrize("scope", ["customers:read", "customers:write"])
def test_each_method_needs_its_scope(
    api_as: Callable[..., Api], alice_company: Customer, scope: str
) -> None:
    without = api_as(None, [s for s in ALL_SCOPES if s != scope])
    before = table_snapshot()

    if scope == "customers:read":
        response = without.get(f"customers/{alice_company.pk}")
    else:
        response = without.post("customers", NEW)

    assert response.status_code == 403
    assert table_snapshot() == before
