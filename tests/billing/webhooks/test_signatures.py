"""Signed deliveries, checked by a real receiver with the function docs/webhooks.md gives
receivers: a changed body, an old timestamp or a wrong secret is rejected; during a roll
both secrets sign."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from billing.models import Customer, Invoice
from billing.webhooks import services
from billing.webhooks.models import Event, WebhookDelivery
from security.models import User
from tests.billing.webhooks.conftest import Receiver, documented_verifier, stepped_up

pytestmark = pytest.mark.django_db

verify = documented_verifier()


def _deliver_one(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    customer: Customer,
) -> tuple[str, Any, Invoice]:
    endpoint, secret = register(receiver.url)
    invoice = make_open_invoice(customer)
    [delivery] = WebhookDelivery.objects.filter(endpoint=endpoint)
    services.attempt_webhook_delivery(delivery.pk)
    return secret, receiver.requests[-1], invoice


def test_the_receiver_verifies_a_finalized_invoice_with_the_documented_function(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    secret, got, invoice = _deliver_one(receiver, register, make_open_invoice, alice_company)

    assert verify(got.headers["Tillit-Signature"], got.body, secret)
    document = json.loads(got.body)
    event = Event.objects.get(public_id=document["id"])
    assert got.headers["Tillit-Event-Id"] == event.public_id
    assert got.headers["Tillit-Delivery-Id"] == WebhookDelivery.objects.get().public_id
    assert document["type"] == "invoice.finalized"
    assert document["customer"] == alice_company.pk
    assert document["data"]["number"] == invoice.display_number
    assert document["data"]["gross_total"] == invoice.gross_total
    assert got.path == "/hooks/"


def test_a_body_changed_by_one_byte_is_rejected(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    secret, got, _ = _deliver_one(receiver, register, make_open_invoice, alice_company)
    header = got.headers["Tillit-Signature"]
    tampered = got.body.replace(b'"gross_total":', b'"gross_total":9', 1)
    one_byte = bytes([got.body[0] ^ 1]) + got.body[1:]

    assert verify(header, got.body, secret)
    assert not verify(header, tampered, secret)
    assert not verify(header, one_byte, secret)
    assert not verify(header, got.body + b" ", secret)


def test_a_timestamp_older_than_300_seconds_is_rejected(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    secret, got, _ = _deliver_one(receiver, register, make_open_invoice, alice_company)
    header = got.headers["Tillit-Signature"]
    sent = int(header.split(",")[0].removeprefix("t="))

    assert verify(header, got.body, secret, now=sent + 300)
    assert not verify(header, got.body, secret, now=sent + 301)
    assert not verify(header, got.body, secret, now=sent - 301)
    # Moving the timestamp forward breaks the signature: the time is signed too.
    fresh = header.replace(f"t={sent}", f"t={sent + 301}")
    assert not verify(fresh, got.body, secret, now=sent + 301)


def test_a_wrong_secret_or_a_missing_signature_is_rejected(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    secret, got, _ = _deliver_one(receiver, register, make_open_invoice, alice_company)
    header = got.headers["Tillit-Signature"]
    _, other_secret = register(receiver.url)

    assert not verify(header, got.body, other_secret)
    assert not verify(header, got.body, secret[:-1])
    assert not verify(header.split(",v1=")[0], got.body, secret)
    assert not verify("", got.body, secret)
    assert not verify("v1=" + "0" * 64, got.body, secret)


def test_during_a_roll_both_secrets_sign_until_the_overlap_ends(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    officer: User,
) -> None:
    endpoint, old = register(receiver.url)
    endpoint, new = services.roll_webhook_secret(
        endpoint, overlap_hours=2, by=officer, request=stepped_up(officer)
    )
    assert new != old
    make_open_invoice(alice_company)
    first = WebhookDelivery.objects.get(endpoint=endpoint)
    services.attempt_webhook_delivery(first.pk)
    header, body = receiver.requests[-1].headers["Tillit-Signature"], receiver.requests[-1].body

    assert header.count("v1=") == 2
    assert verify(header, body, new) and verify(header, body, old)

    later = timezone.now() + datetime.timedelta(hours=2, minutes=1)
    with time_machine.travel(later, tick=False):
        make_open_invoice(alice_company)
        second = WebhookDelivery.objects.filter(endpoint=endpoint).exclude(pk=first.pk).get()
        services.attempt_webhook_delivery(second.pk)
        header, body = receiver.requests[-1].headers["Tillit-Signature"], receiver.requests[-1].body
        assert header.count("v1=") == 1
        assert verify(header, body, new)
        assert not verify(header, body, old)
