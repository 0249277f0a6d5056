"""A delivery is claimed ("sending", committed) before it is sent, so one worker sends it; a
claim whose worker died is never resent by itself: after DELIVERY_SENDING_TIMEOUT_SECONDS
it turns failed ("interrupted") and staff decide, with a permission, audited."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from audit import SYSTEM
from billing.delivery import services
from billing.delivery.exceptions import DeliveryError, RetryRefused
from billing.delivery.models import Delivery, InvoiceLink
from billing.documents.models import InvoiceDocument
from security.models import User
from security.roles import (
    ACCOUNTANT,
    AUDITOR,
    BILLING_CLERK,
    FRAUD_ANALYST,
    PAYMENTS_OPERATOR,
    SECURITY_OFFICER,
)
from tests.billing.delivery.conftest import Mailbox
from tests.factories import audit_events, make_user, with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def claimed(alice_document: InvoiceDocument, smtp_server: Mailbox, gnupg_home: Path) -> Delivery:
    """A link delivery claimed by a worker that then died before it recorded anything."""
    delivery = services.queue_delivery(alice_document.invoice, by=SYSTEM)
    assert services._claim(delivery.pk, timezone.now())
    return Delivery.objects.get(pk=delivery.pk)


def test_a_delivery_is_marked_sending_before_the_message_leaves(
    alice_document: InvoiceDocument,
    smtp_server: Mailbox,
    gnupg_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delivery = services.queue_delivery(alice_document.invoice, by=SYSTEM)
    seen: list[tuple[str, bool]] = []
    build = services._build

    def build_and_look(claimed: Delivery, now: datetime.datetime) -> Any:
        row = Delivery.objects.get(pk=claimed.pk)
        seen.append((row.status, row.claimed_at is not None))
        return build(claimed, now)

    monkeypatch.setattr(services, "_build", build_and_look)

    sent = services.attempt_delivery(delivery.pk, by=SYSTEM)

    assert seen == [(Delivery.Status.SENDING, True)]
    assert (sent.status, sent.claimed_at) == (Delivery.Status.SENT, None)
    assert len(smtp_server.messages) == 1


def test_a_claimed_delivery_is_sent_by_neither_its_job_nor_the_safety_net(
    claimed: Delivery, smtp_server: Mailbox
) -> None:
    again = services.attempt_delivery(claimed.pk, by=SYSTEM)
    attempted = services.send_due_deliveries(by=SYSTEM)

    assert again.status == Delivery.Status.SENDING and attempted == 0
    assert smtp_server.messages == []
    assert not InvoiceLink.objects.exists()  # no second single-use link either
    assert not audit_events("invoice.delivery_attempted")


def test_an_interrupted_send_turns_failed_after_the_timeout_and_is_not_resent(
    claimed: Delivery, smtp_server: Mailbox, settings: Any
) -> None:
    settings.DELIVERY_SENDING_TIMEOUT_SECONDS = 600
    with time_machine.travel(timezone.now() + datetime.timedelta(seconds=599)):
        assert services.send_due_deliveries(by=SYSTEM) == 0
    assert Delivery.objects.get(pk=claimed.pk).status == Delivery.Status.SENDING

    with time_machine.travel(timezone.now() + datetime.timedelta(seconds=601)):
        services.send_due_deliveries(by=SYSTEM)

    failed = Delivery.objects.get(pk=claimed.pk)
    assert failed.status == Delivery.Status.FAILED
    assert failed.last_error.startswith("interrupted while sending")
    [attempt] = failed.attempt_log.all()
    assert not attempt.succeeded and attempt.error == failed.last_error
    [event] = audit_events("invoice.delivery_interrupted", failed.invoice)
    assert event.details["delivery_id"] == failed.pk
    assert smtp_server.messages == []


def test_staff_send_an_interrupted_delivery_again_once_they_decide(
    claimed: Delivery, smtp_server: Mailbox, clerk: User
) -> None:
    clerk = with_role(clerk, BILLING_CLERK)
    with pytest.raises(DeliveryError, match="sending"):  # its worker may still be at it
        services.retry_delivery(claimed, by=clerk)

    later = timezone.now() + datetime.timedelta(hours=1)
    with time_machine.travel(later):
        services.retry_delivery(claimed, by=clerk)  # interrupted, not yet released: allowed
        sent = services.attempt_delivery(claimed.pk, by=SYSTEM)

    assert sent.status == Delivery.Status.SENT
    assert len(smtp_server.messages) == 1
    [event] = audit_events("invoice.delivery_retried")
    assert event.actor_id == str(clerk.pk) and event.details["previous_status"] == "sending"


@pytest.mark.parametrize(
    "role", [None, ACCOUNTANT, PAYMENTS_OPERATOR, FRAUD_ANALYST, SECURITY_OFFICER, AUDITOR]
)
def test_only_a_billing_clerk_may_send_a_failed_delivery_again(
    role: str | None, claimed: Delivery, smtp_server: Mailbox, alice: User, outsider: User
) -> None:
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=1)):
        services.release_interrupted_deliveries(by=SYSTEM)
    people = [alice, outsider] if role is None else [with_role(make_user("staff"), role)]
    for person in people:
        with pytest.raises(RetryRefused):
            services.retry_delivery(claimed, by=person)

    assert Delivery.objects.get(pk=claimed.pk).status == Delivery.Status.FAILED
    assert not audit_events("invoice.delivery_retried")
    assert smtp_server.messages == []


def test_a_send_that_ends_after_its_claim_was_released_counts_as_sent(
    alice_document: InvoiceDocument,
    smtp_server: Mailbox,
    gnupg_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker was only slow: the safety net judged it interrupted meanwhile. What it
    did is still recorded, and the message it sent makes the delivery sent."""
    delivery = services.queue_delivery(alice_document.invoice, by=SYSTEM)
    build = services._build

    def slow(claimed: Delivery, now: datetime.datetime) -> Any:
        message = build(claimed, now)
        later = timezone.now() + datetime.timedelta(hours=1)
        services.release_interrupted_deliveries(by=SYSTEM, now=later)
        return message

    monkeypatch.setattr(services, "_build", slow)

    after = services.attempt_delivery(delivery.pk, by=SYSTEM)

    assert after.status == Delivery.Status.SENT
    assert [a.succeeded for a in after.attempt_log.all()] == [False, True]
    late = audit_events("invoice.delivery_attempted")[-1]
    assert late.details["late"] is True and late.details["outcome"] == "sent"
    assert len(smtp_server.messages) == 1
