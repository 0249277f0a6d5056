"""schemathesis against the live OpenAPI schema (``/api/schema/``), in-process (WSGI).

Every operation under /api/v1/ is called with generated requests (bounded: a few examples
each, so the whole run fits CI in well under a minute) with customer Alice's real bearer
token, while customer Bob has invoices, a saved card and a payment of his own. Checks: no
5xx, every response conforms to the schema (status code, content type, body), and no
response holds anything of Bob's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing.models import Customer, Invoice
from payments import services
from payments.models import PaymentMethod
from security.models import User
from tests.api.conftest import make_token
from tests.factories import line
from tests.payments.fixtures import APPROVED, key, sek

# schemathesis runs the operations as subtests of one test, in one database transaction.
pytestmark = pytest.mark.django_db

BOB_NOTE = "bob-private-note-7f3a9c"


@pytest.fixture(autouse=True)
def _keep_the_test_transaction() -> Iterator[None]:
    """Calls go to the WSGI application, not through Django's test client: keep Django from
    closing the test's connection (and its transaction) after each one, as the test client
    does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bobs_world(
    bob: User,
    bob_company: Customer,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    make_draft_invoice: Callable[..., Invoice],
    saved_card: Callable[[str], PaymentMethod],
    thousand_sek_invoice: Invoice,
    alice: User,
) -> set[str]:
    """Bob's records (and some of Alice's, so her lists are not empty); the strings that
    would give Bob's away in a response."""
    from payments.vault.cards import Card
    from payments.vault.services import tokenize

    bobs_invoice = make_open_invoice(
        bob_company, [line("Bob's secret works", "3", "999.00")], notes=BOB_NOTE
    )
    make_draft_invoice(bob_company, notes=BOB_NOTE)
    bobs_card = tokenize(
        Card.from_input(number="5555555555554444", expiry="11/38", cvc="321"),
        customer=bob_company,
        by=bob,
    )
    services.pay_invoice(
        bobs_invoice,
        amount=bobs_invoice.money(50_000),
        payment_method=bobs_card,
        idempotency_key=key("bob"),
        by=bob,
    )
    make_open_invoice(alice_company)
    services.pay_invoice(
        thousand_sek_invoice,
        amount=sek(400),
        payment_method=saved_card(APPROVED),
        idempotency_key=key("alice"),
        by=alice,
    )
    return {
        BOB_NOTE,
        bob_company.name,
        bob_company.email,
        bobs_invoice.display_number,
        "Bob's secret works",
    }


def _live_schema() -> Any:
    """The application's OpenAPI schema as drf-spectacular builds it for ``/api/schema``
    (the view serves this generator's output), calls going to the WSGI application.
    Built at collection: it needs no database. (The lazy
    ``schemathesis.pytest.from_fixture`` reads ``request.node._nodeid``, which pytest 9 no
    longer has.)"""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = get_wsgi_application()
    return loaded.include(path_regex=r"^/api/v1/")


schema = _live_schema()


@pytest.fixture
def alice_token(alice: User) -> str:
    """Alice's app's token with every scope a customer's token may hold."""
    return make_token(
        alice,
        (
            "customers:read",
            "invoices:read",
            "payments:read",
            "payments:write",
            "payment_methods:read",
            "payment_methods:write",
        ),
    )


def no_data_of(markers: set[str]) -> Callable[..., None]:
    def no_other_customers_data(ctx: Any, response: Any, case: Any) -> None:
        text = response.content.decode("utf-8", "replace") if response.content else ""
        leaked = sorted(m for m in markers if m and m in text)
        assert not leaked, f"a response holds another customer's data: {leaked}"
        assert "Traceback" not in text, "a response holds a stack trace"

    return no_other_customers_data


@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_schema_and_its_customers_apart(
    case: Any, alice_token: str, bobs_world: set[str]
) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {alice_token}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            no_data_of(bobs_world),
        ],
    )


def test_bobs_markers_are_real(bobs_world: set[str]) -> None:
    """The leak check looks for strings Bob's records really hold (else it could not fail)."""
    assert all(bobs_world) and len(bobs_world) == 5
    assert json.dumps(sorted(bobs_world))
