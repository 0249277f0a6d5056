"""The events resource: scope events:read, a customer's token sees only its customer's
events (another's is a 404), an integration sees all only with webhooks.view_event."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from oauth2_provider.models import Application

from billing.models import Customer, Invoice
from billing.webhooks.models import Event
from security.models import User
from tests.api.conftest import bearer, error_of, issue_token, make_application
from tests.factories import make_user

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"


@pytest.fixture
def app(db: None) -> Application:
    return make_application(
        "Bookkeeping app",
        grant=Application.GRANT_AUTHORIZATION_CODE,
        client_type=Application.CLIENT_PUBLIC,
        redirect_uris="https://app.example/callback",
    )


@pytest.fixture
def two_customers_events(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, bob_company: Customer
) -> tuple[Invoice, Invoice]:
    return make_open_invoice(alice_company), make_open_invoice(bob_company)


def _integration(*, may_read_events: bool) -> Application:
    account = make_user("api-erp")
    if may_read_events:
        account.user_permissions.add(
            Permission.objects.get(content_type__app_label="webhooks", codename="view_event")
        )
    return make_application("ERP", user=account)


def test_a_customers_token_lists_only_its_customers_events(
    client: Client, app: Application, alice: User, two_customers_events: tuple[Invoice, Invoice]
) -> None:
    alices, bobs = two_customers_events
    token = issue_token(app, user=alice, scopes="events:read")

    response = client.get(EVENTS, **bearer(token))

    assert response.status_code == 200
    [event] = response.json()["results"]
    assert event["type"] == "invoice.finalized"
    assert event["data"]["number"] == alices.display_number
    assert event["customer"] == alices.customer_id
    assert event["id"] == Event.objects.get(object_id=f"invoice_{alices.pk}").public_id
    bob_event = Event.objects.get(object_id=f"invoice_{bobs.pk}")
    refused = client.get(f"{EVENTS}/{bob_event.public_id}", **bearer(token))
    assert refused.status_code == 404 and error_of(refused)["field"] == "id"
    mine = client.get(f"{EVENTS}/{event['id']}", **bearer(token))
    assert mine.status_code == 200 and mine.json() == event


def test_the_events_need_the_events_read_scope(
    client: Client, app: Application, alice: User, two_customers_events: tuple[Invoice, Invoice]
) -> None:
    token = issue_token(app, user=alice, scopes="invoices:read")

    response = client.get(EVENTS, **bearer(token))

    assert response.status_code == 403
    assert error_of(response)["code"] == "missing_scope"
    assert client.get(EVENTS).status_code == 401
    posted = client.post(EVENTS, {}, content_type="application/json", **bearer(token))
    assert posted.status_code in (403, 405)


def test_an_integration_sees_every_customers_events_only_with_the_permission(
    client: Client, two_customers_events: tuple[Invoice, Invoice]
) -> None:
    allowed = issue_token(_integration(may_read_events=True), scopes="events:read")

    everything = client.get(f"{EVENTS}?type=invoice.finalized", **bearer(allowed)).json()
    assert len(everything["results"]) == 2
    assert client.get(f"{EVENTS}?type=payment.failed", **bearer(allowed)).json()["results"] == []
    bad = client.get(f"{EVENTS}?type=nope", **bearer(allowed))
    assert bad.status_code == 400 and error_of(bad)["field"] == "type"

    Application.objects.all().delete()
    User.objects.filter(username="api-erp").delete()
    without = issue_token(_integration(may_read_events=False), scopes="events:read")
    assert client.get(EVENTS, **bearer(without)).json()["results"] == []


def test_the_list_runs_as_many_queries_with_more_events(
    client: Client,
    app: Application,
    alice: User,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    token = issue_token(app, user=alice, scopes="events:read")
    make_open_invoice(alice_company)
    client.get(EVENTS, **bearer(token))
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(EVENTS, **bearer(token)).json()["results"]) == 1
    for _ in range(5):
        make_open_invoice(alice_company)
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(EVENTS, **bearer(token)).json()["results"]) == 6

    assert len(many) == len(few)
