"""The card payment's hot statements, in one place: the reads compiled by the ORM once per
process (``db.compiled``: the invoice and the payment under their locks, the card
with its risk facts and the idempotency key, the stored key, the gateway account) and the
writes done in one statement with their audit events (the reserved payment with its key
and event, the settled payment with its event). Everything else in payments uses the ORM.

The invoice's locks leave out its frozen snapshots (``Invoice.DOCUMENT_FIELDS``)."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection
from django.db.models import OuterRef, Subquery

from audit import AuditEntry, PendingEvent, pending_event, write_with_event
from billing.models import Invoice
from db.compiled import compiled, mark_inserted
from db.compiled import insert as compiled_insert
from db.compiled import insert_sql as compiled_insert_sql
from db.compiled import update as compiled_update
from db.compiled import update_sql as compiled_update_sql
from db.dialect import is_postgresql
from payments.fraud.selectors import history_annotations, threshold_annotations
from payments.models import IdempotencyKey, Payment, PaymentMethod
from payments.selectors import in_flight_state
from security.actors import Actor


# The card payment's reads, compiled by the ORM once per process (db.compiled).
# The invoice's locks leave out its frozen snapshots (Invoice.DOCUMENT_FIELDS).
@compiled(str, str)
def stored_key(scope: str, key: str) -> Any:
    return IdempotencyKey.objects.select_related("payment").filter(scope=scope, key=key)[:1]


@compiled(int)
def invoice_locked(pk: int) -> Any:
    locked = Invoice.objects.select_for_update(of=("self",)).filter(pk=pk)
    return locked.defer(*Invoice.DOCUMENT_FIELDS)


@compiled(int)
def payment_locked(pk: int) -> Any:
    """The payment and its invoice, both locked in one statement (payment first, then
    invoice: the order every settle and refund takes)."""
    return (
        Payment.objects.select_for_update(of=("self", "invoice"))
        .select_related("invoice")
        .filter(pk=pk)
        .defer(*(f"invoice__{name}" for name in Invoice.DOCUMENT_FIELDS))
    )


@compiled(str)
def user_named(username: str) -> Any:
    return get_user_model().objects.filter(username=username)


@compiled(int, int, datetime.datetime, int, str, str, str, str)
def facts_after_lock(
    card_id: int,
    customer_id: int,
    since: datetime.datetime,
    invoice_id: int,
    scope: str,
    key: str,
    gateway_username: str,
    address: str,
) -> Any:
    stored = IdempotencyKey.objects.filter(scope=scope, key=key)
    gateway = get_user_model().objects.filter(username=gateway_username, is_active=True)
    # The card's secret is the vault's to read (reveal_card, its own table and role); not
    # read here either: when the card was added (the fraud features read the card's first
    # time by fingerprint), which also keeps the statement within psycopg's query cache.
    card = PaymentMethod.objects.defer("deleted_at", "created_at")
    return card.filter(pk=card_id, customer_id=customer_id).annotate(
        **threshold_annotations(),
        **history_annotations(OuterRef("fingerprint"), customer_id, since, address),
        # No "held" total: a payment in flight refuses the attempt (held_state), so what
        # payments in flight hold is always 0 when one goes ahead.
        held_state=Subquery(in_flight_state(invoice_id)),
        stored_hash=Subquery(stored.values("request_hash")[:1]),
        stored_payment=Subquery(stored.values("payment_id")[:1]),
        gateway_account=Subquery(gateway.values("pk")[:1]),
    )


# The idempotency key row, taking the payment's id from ``w``, the payment's INSERT
# (insert_reserved).
_KEY_INSERT = (
    'k AS (INSERT INTO "payments_idempotencykey" ("scope", "key", "request_hash",'
    ' "created_at", "payment_id")'
    " SELECT %s::varchar, %s::varchar, %s::varchar, %s::timestamptz, w.id FROM w)"
)


def insert_reserved(payment: Payment, stored: IdempotencyKey, event: PendingEvent) -> None:
    """Write the reserved payment, its idempotency key and its audit event.

    On PostgreSQL in one statement (``audit.write_with_event``, the key and the event
    taking the payment's id from the payment's INSERT), as the vault writes a card;
    elsewhere the key by a statement of its own.
    """
    insert, params = compiled_insert_sql(payment)
    if not is_postgresql():
        mark_inserted(payment, write_with_event(insert, params, event))
        stored.payment = payment
        compiled_insert(stored)
        return
    key = [stored.scope, stored.key, stored.request_hash, stored.created_at]
    pk = write_with_event(insert, params, event, then=_KEY_INSERT, then_params=key)
    mark_inserted(payment, pk, using=connection.alias)
    stored.payment = payment


_SETTLED_FIELDS = [
    "status",
    "settled_at",
    "gateway_reference",
    "failure_code",
    "failure_message",
    "updated_at",
]


def save_settled(payment: Payment, entry: AuditEntry | None, *, by: Actor) -> None:
    """Save the settled fields, with ``entry``'s event if any (on PostgreSQL one
    statement: ``audit.write_with_event``)."""
    if entry is None:
        compiled_update(payment, _SETTLED_FIELDS)
        return
    event = pending_event(entry.action, actor=by, obj=entry.obj, **entry.details)
    update = compiled_update_sql(payment, _SETTLED_FIELDS, returning=True)
    if write_with_event(*update, event) is None:
        raise DatabaseError(f"payment {payment.pk}: its locked row was not updated")
