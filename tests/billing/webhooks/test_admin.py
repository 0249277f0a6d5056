"""The webhook admin as an attacker tries it: every role but the security officer is
refused registering, changing, rolling and replaying; the secret is shown once and is
nowhere else (pages, audit log, logs, the database row, the session)."""

from __future__ import annotations

import datetime
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from billing.models import Customer, Invoice
from billing.webhooks import services
from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
from security import roles
from security.models import User
from tests.billing.webhooks.conftest import Receiver
from tests.factories import audit_events, make_user

pytestmark = pytest.mark.django_db

ADD = reverse("admin:webhooks_webhookendpoint_add")
ENDPOINTS = reverse("admin:webhooks_webhookendpoint_changelist")
DELIVERIES = reverse("admin:webhooks_webhookdelivery_changelist")
OTHER_STAFF_ROLES = [r for r in roles.STAFF_ROLES if r != roles.SECURITY_OFFICER]
SECRET = re.compile(r"whsec_[A-Za-z0-9_-]{43}")


def _staff(role: str) -> User:
    user = make_user(f"staff-{role.lower().replace(' ', '-')}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def _add_form(url: str) -> dict[str, Any]:
    return {"url": url, "description": "ERP", "events": ["invoice.paid", "payment.failed"]}


def _roll_url(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:webhooks_webhookendpoint_roll", args=[endpoint.pk])


def test_the_officer_registers_an_endpoint_and_sees_its_secret_once(
    officer: User,
    receiver: Receiver,
    admin_client_for: Callable[[User], Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = admin_client_for(officer)
    caplog.set_level(logging.DEBUG)

    response = client.post(ADD, _add_form(receiver.url))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [secret] = SECRET.findall(response.content.decode())
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["invoice.paid", "payment.failed"]
    [created] = audit_events("webhooks.endpoint_created", endpoint)
    assert created.actor_id == str(officer.pk) and created.details["url"] == receiver.url
    # Nowhere else: not the pages, the audit log, the logs, the row, the session.
    pages = [
        client.get(ENDPOINTS).content.decode(),
        client.get(
            reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
        ).content.decode(),
    ]
    assert all(secret not in page and "whsec_" not in page for page in pages)
    audit = json.dumps([e.details for e in AuditEvent.objects.all()])
    assert secret not in audit and "whsec_" not in audit
    assert secret not in caplog.text
    row = WebhookEndpoint.objects.values_list("secret_sealed", flat=True).get()
    assert secret.encode() not in bytes(row) and b"whsec_" not in bytes(row)
    sessions = [s.get_decoded() for s in Session.objects.all()]
    assert secret not in json.dumps(sessions, default=str)


def test_a_roll_from_the_admin_shows_the_new_secret_once_and_is_audited(
    officer: User,
    register: Callable[..., Any],
    receiver: Receiver,
    admin_client_for: Callable[[User], Client],
) -> None:
    endpoint, old = register(receiver.url)
    client = admin_client_for(officer)

    assert client.get(_roll_url(endpoint)).status_code == 200
    response = client.post(_roll_url(endpoint), {"overlap_hours": "6"})

    [new] = SECRET.findall(response.content.decode())
    assert new != old and "no-store" in response["Cache-Control"]
    endpoint.refresh_from_db()
    assert endpoint.previous_secret_expires_at is not None
    [rolled] = audit_events("webhooks.secret_rolled", endpoint)
    assert rolled.actor_id == str(officer.pk)
    assert new not in json.dumps(rolled.details) and old not in json.dumps(rolled.details)


def test_the_officer_needs_a_fresh_second_factor_to_register_or_roll(
    officer: User,
    register: Callable[..., Any],
    receiver: Receiver,
    admin_client_for: Callable[[User], Client],
) -> None:
    endpoint, _ = register(receiver.url)
    client = admin_client_for(officer)
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=10)):
        added = client.post(ADD, _add_form(receiver.url))
        rolled = client.post(_roll_url(endpoint), {"overlap_hours": "1"})

    assert added.status_code == 302 and reverse("security:step_up") in added["Location"]
    assert rolled.status_code == 302 and reverse("security:step_up") in rolled["Location"]
    assert WebhookEndpoint.objects.count() == 1
    assert audit_events("webhooks.secret_rolled") == []


@pytest.mark.parametrize("role", OTHER_STAFF_ROLES)
def test_every_other_role_is_refused_registering_changing_and_rolling(
    role: str,
    register: Callable[..., Any],
    receiver: Receiver,
    admin_client_for: Callable[[User], Client],
) -> None:
    endpoint, _ = register(receiver.url)
    client = admin_client_for(_staff(role))
    change = reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])

    assert client.get(ADD).status_code == 403
    assert client.post(ADD, _add_form(receiver.url)).status_code == 403
    edited = client.post(change, {**_add_form("http://127.0.0.1:1/evil"), "active": "on"})
    assert edited.status_code in (302, 403)
    assert client.get(_roll_url(endpoint)).status_code in (403, 404)
    assert client.post(_roll_url(endpoint), {"overlap_hours": "0"}).status_code in (403, 404)

    endpoint.refresh_from_db()
    assert endpoint.url == receiver.url and WebhookEndpoint.objects.count() == 1
    assert audit_events("webhooks.endpoint_updated") == []
    assert audit_events("webhooks.secret_rolled") == []
    sees = role == roles.AUDITOR
    assert (client.get(ENDPOINTS).status_code == 200) == sees
    assert (client.get(DELIVERIES).status_code == 200) == sees


@pytest.mark.parametrize("role", OTHER_STAFF_ROLES)
def test_every_other_role_is_refused_a_replay(
    role: str,
    register: Callable[..., Any],
    receiver: Receiver,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    admin_client_for: Callable[[User], Client],
) -> None:
    _endpoint, _ = register(receiver.url)
    make_open_invoice(alice_company)
    delivery = services.attempt_webhook_delivery(WebhookDelivery.objects.get().pk)
    client = admin_client_for(_staff(role))

    client.post(DELIVERIES, {"action": "replay", "_selected_action": [delivery.pk]})

    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.requests) == 1
    assert audit_events("webhooks.delivery_replayed") == []


def test_the_officer_replays_from_the_deliveries_list(
    officer: User,
    register: Callable[..., Any],
    receiver: Receiver,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    admin_client_for: Callable[[User], Client],
) -> None:
    register(receiver.url)
    make_open_invoice(alice_company)
    delivery = services.attempt_webhook_delivery(WebhookDelivery.objects.get().pk)

    admin_client_for(officer).post(
        DELIVERIES, {"action": "replay", "_selected_action": [delivery.pk]}
    )

    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert len(audit_events("webhooks.delivery_replayed")) == 1


def test_customers_and_unverified_staff_reach_no_webhook_page(
    officer: User,
    alice: User,
    register: Callable[..., Any],
    receiver: Receiver,
    unverified_staff_client_for: Callable[[User], Client],
) -> None:
    endpoint, _ = register(receiver.url)
    customer = Client()
    customer.force_login(alice)
    unverified = unverified_staff_client_for(officer)

    for client in (customer, unverified, Client()):
        for url in (ADD, ENDPOINTS, DELIVERIES, _roll_url(endpoint)):
            response = client.get(url)
            assert response.status_code in (302, 403), url
            assert "whsec_" not in response.content.decode()
        assert client.post(_roll_url(endpoint), {"overlap_hours": "0"}).status_code in (302, 403)
    assert audit_events("webhooks.secret_rolled") == []


def test_a_receivers_answer_is_shown_escaped(
    officer: User,
    register: Callable[..., Any],
    receiver: Receiver,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    admin_client_for: Callable[[User], Client],
) -> None:
    register(receiver.url)
    receiver.answers = [500]
    make_open_invoice(alice_company)
    delivery = services.attempt_webhook_delivery(WebhookDelivery.objects.get().pk)

    page = (
        admin_client_for(officer)
        .get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
        .content.decode()
    )

    assert "&lt;script&gt;alert(1)&lt;/script&gt; received" in page
    assert "<script>alert(1)</script>" not in page


def test_an_events_page_shows_its_snapshot_with_amounts_in_currency_units(
    officer: User,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    admin_client_for: Callable[[User], Client],
) -> None:
    from billing.admin_format import format_money
    from billing.webhooks.models import Event

    invoice = make_open_invoice(alice_company)
    event = Event.objects.get(type="invoice.finalized")

    page = (
        admin_client_for(officer)
        .get(reverse("admin:webhooks_event_change", args=[event.pk]))
        .content.decode()
    )

    assert event.public_id in page and invoice.display_number in page
    assert (
        f"<th>gross_total</th><td>{format_money(invoice.gross_total, invoice.currency)}</td>"
        in page
    )
