"""Deliveries: retried with backoff on failure, stopped by a 2xx, given up (audited and
alerted) after three days; replayed from the admin's service; nothing for a rollback."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from billing import services as billing
from billing.models import Customer, Invoice
from billing.money import Money
from billing.webhooks import services
from billing.webhooks.exceptions import WebhookError, WebhookRefused
from billing.webhooks.models import Event, WebhookAttempt, WebhookDelivery
from billing.webhooks.selectors import retry_delays
from security.models import SecurityAlert, User
from tests.billing.webhooks.conftest import Receiver, stepped_up
from tests.factories import audit_events

pytestmark = pytest.mark.django_db


def test_the_backoff_doubles_from_a_minute_up_to_twelve_hours_within_three_days() -> None:
    delays = retry_delays()

    assert delays[:4] == [60, 120, 240, 480]
    assert max(delays) == 12 * 3600 and delays[-4:] == [12 * 3600] * 4
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert sum(delays) <= 72 * 3600 < sum(delays) + 12 * 3600
    assert len(delays) + 1 == 15  # attempts in all


def test_the_backoff_follows_its_settings(settings: Any) -> None:
    settings.WEBHOOKS_RETRY_SECONDS = 10
    settings.WEBHOOKS_RETRY_MAX_SECONDS = 40
    settings.WEBHOOKS_RETRY_HOURS = 1

    delays = retry_delays()

    assert delays[:4] == [10, 20, 40, 40]
    assert sum(delays) <= 3600 < sum(delays) + 40


def _pending(endpoint: Any) -> WebhookDelivery:
    return WebhookDelivery.objects.get(endpoint=endpoint)


def test_a_500_is_retried_after_the_backoff_and_a_200_stops_the_retries(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    endpoint, _ = register(receiver.url)
    receiver.answers = [500, 500]
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        make_open_invoice(alice_company)
        delivery = services.attempt_webhook_delivery(_pending(endpoint).pk)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.next_attempt_at == start + datetime.timedelta(seconds=60)

    with time_machine.travel(start + datetime.timedelta(seconds=59), tick=False):
        assert services.send_due_webhook_deliveries() == 0  # not yet
    with time_machine.travel(start + datetime.timedelta(seconds=60), tick=False):
        assert services.send_due_webhook_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == start + datetime.timedelta(seconds=180)
    with time_machine.travel(start + datetime.timedelta(seconds=180), tick=False):
        assert services.send_due_webhook_deliveries() == 1
    with time_machine.travel(start + datetime.timedelta(days=3), tick=False):
        assert services.send_due_webhook_deliveries() == 0  # delivered: nothing more

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert len(receiver.requests) == 3
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery))
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert [a.succeeded for a in attempts] == [False, False, True]
    assert attempts[0].error == "the receiver answered 500"
    assert "<script>" in attempts[0].response_body  # kept as text; the admin escapes it
    # Every retry posts the same event: the receiver dedupes by its id.
    assert len({r.headers["Tillit-Event-Id"] for r in receiver.requests}) == 1


def test_after_the_last_retry_the_delivery_is_given_up_audited_and_alerted(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    settings: Any,
) -> None:
    settings.WEBHOOKS_RETRY_HOURS = 1  # delays of 1, 2, 4, 8 and 16 minutes: 6 attempts
    endpoint, _ = register(receiver.url)
    receiver.answers = [503] * 10
    make_open_invoice(alice_company)
    delivery = _pending(endpoint)
    now = timezone.now()
    for _ in range(6):
        with time_machine.travel(now, tick=False):
            delivery = services.attempt_webhook_delivery(delivery.pk)
        now = delivery.next_attempt_at or now

    assert (delivery.status, delivery.attempts) == ("failed", 6)
    assert len(receiver.requests) == 6
    assert services.send_due_webhook_deliveries(now=now + datetime.timedelta(days=9)) == 0
    [given_up] = audit_events("webhooks.delivery_given_up", endpoint)
    assert given_up.details["delivery"] == delivery.public_id
    assert given_up.details["attempts"] == 6
    alert = SecurityAlert.objects.get(kind="webhooks.delivery_given_up")
    assert delivery.public_id in alert.detail and alert.is_open


def test_a_redirect_is_an_answer_never_followed(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    endpoint, _ = register(receiver.url)
    receiver.answers = [302]
    make_open_invoice(alice_company)

    delivery = services.attempt_webhook_delivery(_pending(endpoint).pk)

    assert [r.path for r in receiver.requests] == ["/hooks/"]
    assert (delivery.status, delivery.last_status_code) == ("pending", 302)


def test_an_unreachable_receiver_is_a_failed_attempt(
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    endpoint, _ = register("http://127.0.0.1:9/closed")  # the discard port: refused
    make_open_invoice(alice_company)

    delivery = services.attempt_webhook_delivery(_pending(endpoint).pk)

    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code is None and attempt.error
    assert delivery.status == "pending" and delivery.attempts == 1


def test_an_event_in_a_rolled_back_transaction_leaves_nothing_to_send(
    receiver: Receiver,
    register: Callable[..., Any],
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    settings.DOCUMENTS_ON_FINALIZE = "async"  # jobs are queued on commit (captured here)
    register(receiver.url)
    draft = make_draft_invoice(alice_company)

    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        billing.finalize_invoice(draft, by=clerk)
        assert Event.objects.count() == 1 and WebhookDelivery.objects.count() == 1
        raise RuntimeError("the caller fails after finalizing")

    assert callbacks == []
    assert not Event.objects.exists() and not WebhookDelivery.objects.exists()
    assert services.send_due_webhook_deliveries() == 0
    assert receiver.requests == []


def test_a_committed_event_queues_its_delivery_job_on_commit(
    receiver: Receiver,
    register: Callable[..., Any],
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    settings.DOCUMENTS_ON_FINALIZE = "sync"  # the job runs inline after the commit
    endpoint, _secret = register(receiver.url, ["invoice.voided"])
    invoice = billing.finalize_invoice(make_draft_invoice(alice_company), by=clerk)
    assert not WebhookDelivery.objects.exists()  # invoice.finalized: not chosen

    with django_capture_on_commit_callbacks(execute=True):
        billing.void_invoice(invoice, by=clerk, reason="sent twice")

    assert _pending(endpoint).status == "succeeded"
    assert [r.headers["Tillit-Event-Id"] for r in receiver.requests] == [
        Event.objects.get(type="invoice.voided").public_id
    ]


def test_each_invoice_service_emits_its_event_with_a_snapshot(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, clerk: User
) -> None:
    invoice = make_open_invoice(alice_company)
    billing.issue_credit_note_for_amount(
        invoice, amount=Money(10_000, invoice.currency), reason="discount", by=clerk
    )
    invoice.refresh_from_db()
    billing.record_payment_amount(
        invoice, amount=Money(invoice.amount_due, invoice.currency), by=clerk, reference="bank:1"
    )
    other = make_open_invoice(alice_company)
    billing.void_invoice(other, by=clerk)

    types = list(Event.objects.order_by("id").values_list("type", "object_id"))
    assert types == [
        ("invoice.finalized", f"invoice_{invoice.pk}"),
        ("invoice.finalized", f"invoice_{invoice.pk + 1}"),  # the credit note
        ("invoice.credited", f"invoice_{invoice.pk}"),
        ("invoice.paid", f"invoice_{invoice.pk}"),
        ("invoice.finalized", f"invoice_{other.pk}"),
        ("invoice.voided", f"invoice_{other.pk}"),
    ]
    paid = Event.objects.get(type="invoice.paid")
    assert paid.customer_id == alice_company.pk
    assert paid.data["status"] == "paid" and paid.data["amount_due"] == 0
    assert Event.objects.get(type="invoice.credited").data["credited_amount"] == 10_000


def test_a_replay_sends_a_delivery_again_and_is_audited(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    officer: User,
    clerk: User,
) -> None:
    endpoint, _ = register(receiver.url)
    make_open_invoice(alice_company)
    delivery = services.attempt_webhook_delivery(_pending(endpoint).pk)
    assert delivery.status == "succeeded"

    with pytest.raises(WebhookRefused):
        services.replay_webhook_delivery(delivery, by=clerk)
    replayed = services.replay_webhook_delivery(delivery, by=officer, request=stepped_up(officer))
    assert (replayed.status, replayed.attempts) == ("pending", 0)
    with pytest.raises(WebhookError):  # already on its way
        services.replay_webhook_delivery(replayed, by=officer)
    services.attempt_webhook_delivery(delivery.pk)

    assert len(receiver.requests) == 2
    [event] = audit_events("webhooks.delivery_replayed", endpoint)
    assert event.actor_id == str(officer.pk)
    assert event.details["previous_status"] == "succeeded"


def test_a_disabled_endpoint_gets_nothing_more(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    officer: User,
) -> None:
    endpoint, _ = register(receiver.url)
    make_open_invoice(alice_company)
    services.update_webhook_endpoint(
        endpoint, active=False, by=officer, request=stepped_up(officer)
    )

    delivery = services.attempt_webhook_delivery(_pending(endpoint).pk)
    make_open_invoice(alice_company)

    assert receiver.requests == []
    assert (delivery.status, delivery.last_error) == ("failed", "the endpoint is disabled")
    assert WebhookDelivery.objects.count() == 1  # the second event went to nobody
    assert not SecurityAlert.objects.exists()
    [updated] = audit_events("webhooks.endpoint_updated", endpoint)
    assert updated.details["changes"] == {"active": [True, False]}


def test_in_async_mode_the_first_attempt_is_a_job_queued_at_commit_and_a_retry_is_scheduled(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    from django_q.models import OrmQ, Schedule

    endpoint, _ = register(receiver.url, ["invoice.voided"])
    invoice = make_open_invoice(alice_company)
    settings.DOCUMENTS_ON_FINALIZE = "async"

    with django_capture_on_commit_callbacks(execute=True):
        billing.void_invoice(invoice, by=clerk)

    delivery = _pending(endpoint)
    [job] = OrmQ.objects.all()
    assert job.task["func"] == "billing.webhooks.tasks.attempt_webhook_delivery_job"
    assert job.task["args"] == (delivery.pk,)

    receiver.answers = [500]
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.attempt_webhook_delivery(delivery.pk)
    [retry] = Schedule.objects.filter(func="billing.webhooks.tasks.attempt_webhook_delivery_job")
    assert retry.next_run == delivery.next_attempt_at and retry.repeats == 1


def test_a_batch_of_payments_emits_one_paid_event_per_invoice_in_constant_statements(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    endpoint, _ = register(receiver.url, ["invoice.paid"])

    def pay_all(count: int) -> int:
        invoices = [make_open_invoice(alice_company) for _ in range(count)]
        received = [
            billing.ReceivedAmount(i, Money(i.gross_total, i.currency), f"bank:{i.pk}")
            for i in invoices
        ]
        with CaptureQueriesContext(connection) as queries:
            billing.record_payment_amounts(received, by=clerk)
        return len(queries)

    few, many = pay_all(2), pay_all(6)

    assert few == many
    paid = Event.objects.filter(type="invoice.paid")
    assert paid.count() == 8
    assert WebhookDelivery.objects.filter(endpoint=endpoint, event__in=paid).count() == 8
    assert services.send_due_webhook_deliveries() == 8
    assert len(receiver.requests) == 8


def test_a_claimed_delivery_is_posted_by_one_worker_and_a_dead_workers_claim_is_retried(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    settings: Any,
) -> None:
    endpoint, _ = register(receiver.url)
    make_open_invoice(alice_company)
    delivery = _pending(endpoint)
    claimed = timezone.now()
    # Another worker claimed it (and died before recording anything).
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="sending", claimed_at=claimed)

    assert services.attempt_webhook_delivery(delivery.pk).status == "sending"
    stale = claimed + datetime.timedelta(seconds=settings.WEBHOOKS_SENDING_TIMEOUT_SECONDS - 1)
    assert services.send_due_webhook_deliveries(now=stale) == 0
    assert receiver.requests == []

    late = claimed + datetime.timedelta(seconds=settings.WEBHOOKS_SENDING_TIMEOUT_SECONDS)
    with time_machine.travel(late, tick=False):
        assert services.send_due_webhook_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.requests) == 1
    assert services.attempt_webhook_delivery(delivery.pk).status == "succeeded"
    assert len(receiver.requests) == 1  # delivered: never posted again by itself
