"""The card payment's hot statements, in one place: the reads compiled by the ORM once per
process (``security.compiled``: the invoice and the payment under their locks, the card
with its risk facts and the idempotency key, the stored key, the gateway account) and the
writes done in one statement with their audit events (the reserved payment with its key
and event, the settled payment with its event). Everything else in payments uses the ORM.

The invoice's locks leave out its frozen snapshots (``Invoice.DOCUMENT_FIELDS``)."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import OuterRef, Subquery

from audit import AuditEntry
from audit.services import PreparedEvent, append_prepared, execute_recorded
from billing.models import Invoice
from payments.fraud.selectors import history_annotations, threshold_annotations
from payments.models import IdempotencyKey, Payment, PaymentMethod
from payments.selectors import in_flight_state
from security.actors import Actor
from security.compiled import compiled, hot, mark_inserted
from security.compiled import insert as compiled_insert
from security.compiled import insert_sql as compiled_insert_sql
from security.compiled import update as compiled_update
from security.compiled import update_sql as compiled_update_sql


# The card payment's reads, compiled by the ORM once per process (security.compiled).
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
    # The card's ciphertext and key are the vault's to read (reveal_card): not read here,
    # which also keeps the statement within psycopg's query cache (a test checks).
    card = PaymentMethod.objects.defer("ciphertext", "data_key", "deleted_at")
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


# The idempotency key row, taking the payment's id from ``p`` (insert_reserved).
_KEY_INSERT = (
    'INSERT INTO "payments_idempotencykey" ("scope", "key", "request_hash", "created_at",'
    ' "payment_id") SELECT %s::varchar, %s::varchar, %s::varchar, %s::timestamptz, p.id FROM p'
)


def insert_reserved(payment: Payment, stored: IdempotencyKey, event: PreparedEvent) -> None:
    """Write the reserved payment, its idempotency key and its audit event.

    On PostgreSQL in one statement (``WITH p AS (INSERT ...)``, the key and the event
    taking the payment's id from it), as the vault writes a card; elsewhere in three.
    """
    if connection.vendor != "postgresql":
        compiled_insert(payment)
        stored.payment = payment
        compiled_insert(stored)
        append_prepared(event, str(payment.pk))
        return
    insert, params = compiled_insert_sql(payment)
    call, event_params = event.append_sql("p.id::text")
    with connection.cursor() as cursor:
        cursor.execute(
            hot(
                f"WITH p AS ({insert}), k AS ({_KEY_INSERT})"  # noqa: S608 (built from names)
                f" SELECT p.id FROM p CROSS JOIN LATERAL {call} AS a"
            ),
            [
                *params,
                stored.scope,
                stored.key,
                stored.request_hash,
                stored.created_at,
                *event_params,
            ],
        )
        mark_inserted(payment, cursor.fetchone()[0], using=connection.alias)
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
    statement: ``audit.services.execute_recorded``)."""
    if entry is None:
        compiled_update(payment, _SETTLED_FIELDS)
    else:
        execute_recorded(*compiled_update_sql(payment, _SETTLED_FIELDS), entry, actor=by)
