"""Cards in the vault: tokenize a card, reveal it (the only way back), delete it; a key
fault reported; the card-entry key a form encrypts to.

Nothing here logs, audits or returns more than brand and last 4 of a card,
except ``reveal_card``, whose caller (the gateway adapter) needs the number.
"""

from __future__ import annotations

import datetime
import functools
import secrets
from dataclasses import dataclass, field
from typing import Any, NoReturn

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import PendingEvent, pending_event, record, write_with_event
from billing.models import Customer
from db.compiled import compiled, mark_inserted
from db.dialect import is_postgresql
from db.prepared import hot
from payments.exceptions import CardPaymentsUnavailable
from payments.vault import crypto
from payments.vault.cards import Brand, Card, validate_card
from payments.vault.entry import EncryptedCard, open_payload
from payments.vault.exceptions import (
    InvalidCard,
    KeysUnavailable,
    KeyUnavailable,
    PaymentMethodGone,
    RevealRefused,
)
from payments.vault.keys import unwrap_data_key, vault_keyring
from payments.vault.models import CardSecret, DataKey, EntryKey, PaymentMethod, RevealWindow
from payments.vault.secret_store import (
    erase_secret,
    erase_secret_after,
    secret_and_card_transaction,
    secret_cte,
    secret_for_token,
    secret_key_id,
    secret_rides_with_card,
    store_secret,
)
from payments.vault.services.key_rotation import (
    current_entry_key,
    encryption_key,
    forget_encryption_key,
)
from security.actors import Actor
from security.services import raise_security_alert

REVEAL_PERMISSION = "payments.reveal_card"
REVEALED_ACTION = "vault.card_revealed"


def _new_token() -> str:
    return "tok_" + secrets.token_urlsafe(24)


def card_fingerprint(number: str) -> str:
    """HMAC-SHA256 of the number under the keyring's fingerprint key, hex."""
    return vault_keyring().fingerprint(b"tillit.vault.fingerprint.v1|" + number.encode()).hex()


def tokenize(
    card: Card | EncryptedCard, *, customer: Customer, by: Actor, saved: bool = True
) -> PaymentMethod:
    """Validate, encrypt under the active DEK and store a card; the CVC is checked, then dropped.

    ``card`` is either a Card (server-side callers) or an EncryptedCard (the
    browser form), which is decrypted here. Bad input raises InvalidCard naming
    the field (number, expiry, cvc, payload, key_id) and stores nothing.
    ``saved=False``: the card serves one payment only; it is never listed as a saved
    card and its payer erases it once that payment is final. Whether a customer may
    save a card is the payments service's rule (``payments.saved_cards.save_card``).
    """
    if isinstance(card, EncryptedCard):
        card = open_payload(card, by=by)
    if not isinstance(card, Card):
        raise InvalidCard("expected card data", field="number")
    valid = validate_card(card)
    # PCI DSS 3.3.1.2: the CVC went no further than validate_card; it is not kept.
    fingerprint = card_fingerprint(valid.number)

    for _attempt in range(3):
        # One commit when the secret shares the card's connection (no vault role): both
        # rows and the audit event, one WAL flush. With the vault role the secret commits
        # on its own connection first (secret_store.store_secret).
        with secret_and_card_transaction():
            method = _seal_and_insert(valid, fingerprint, customer=customer, by=by, saved=saved)
        if method is not None:
            return method
    raise KeyUnavailable("no active data key could be obtained", field="key_id")


def _seal_and_insert(
    valid: Any, fingerprint: str, *, customer: Customer, by: Actor, saved: bool
) -> PaymentMethod | None:
    """Seal the number under the active DEK and write the secret, then the method with its
    audit event; None (nothing left behind) when the key was rotated meanwhile."""
    key, key_bytes = encryption_key()
    token = _new_token()
    now = timezone.now()
    # On one PostgreSQL connection the method's statement writes the secret too. Else the
    # secret first, then the method: with the vault role the secret commits first on its
    # own connection, so a failure in between leaves an orphan secret (purged), never a
    # card without one.
    secret = CardSecret(
        token=token,
        data_key_id=key.pk,
        ciphertext=crypto.seal(
            valid.number.encode("ascii"), key=key_bytes, key_id=key.id, token=token
        ),
        created_at=now,
    )
    rides = secret_rides_with_card()
    if not rides and not store_secret(secret):
        forget_encryption_key()  # retired (or gone) since it was cached: take the new one
        return None
    method = PaymentMethod(
        token=token,
        customer=customer,
        brand=valid.brand,
        bin=valid.number[:6],
        last4=valid.last4,
        exp_month=valid.exp_month,
        exp_year=valid.exp_year,
        fingerprint=fingerprint,
        saved=saved,
        created_at=now,
    )
    event = pending_event(
        "vault.card_tokenized",
        actor=by,
        obj=method,  # not saved yet: the row's id is given by the database
        customer_id=customer.pk,
        brand=str(valid.brand),
        last4=valid.last4,
        saved=saved,
        key_id=key.hex_id,
    )
    if insert_under_active_key(
        method, key, event=event, also=secret_cte(secret) if rides else None
    ):
        return method
    # The key was rotated by another process since it was cached: its secret goes (when
    # it was written apart), and the card is sealed again under the new key.
    if not rides:
        erase_secret(token)
    return None


@functools.cache
def _guarded_insert_sql(model: type[models.Model], postgres: bool) -> tuple[str, list[Any]]:
    """The INSERT ... SELECT ... FROM the DEK row statement for ``model`` (built once)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    values = ", ".join(f"%s::{f.db_type(connection)}" if postgres else "%s" for f in fields)
    lock = " FOR SHARE" if postgres else ""  # SQLite serializes writers itself
    # Only model metadata and constants are formatted in; every value is a parameter.
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(str(f.column)) for f in fields)
    pk_column = quote(str(model._meta.pk.column)) if model._meta.pk else "id"
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {values} "  # noqa: S608
        f"FROM {quote(DataKey._meta.db_table)} WHERE {quote('id')} = %s "
        f"AND {quote('state')} = %s{lock} RETURNING {pk_column} AS row_id"
    )
    return sql, fields


def insert_under_active_key(
    record_row: PaymentMethod,
    key: DataKey,
    *,
    event: PendingEvent | None = None,
    also: tuple[str, list[Any]] | None = None,
) -> bool:
    """INSERT ``record_row`` only if ``key`` is still the active DEK, with its audit event.

    On PostgreSQL one statement writes the row and appends ``event`` for it
    (``audit.write_with_event``; ``also``: a further CTE, the card's secret): the key row
    is read ``FOR SHARE`` by the same statement, so a rotation (which locks it ``FOR
    UPDATE``) waits for this transaction, exactly as ``data_key_for_encryption``
    guarantees for batch work; with no open transaction the statement is its
    own, so row and event commit together in one round trip. Elsewhere, the
    insert and the append share a transaction. False (nothing written, no event)
    when the key was retired meanwhile: forget it and take the new one.
    """
    model = type(record_row)
    sql, fields = _guarded_insert_sql(model, is_postgresql())
    params = [f.get_db_prep_save(f.pre_save(record_row, True), connection) for f in fields]
    params += [key.pk, DataKey.State.ACTIVE]
    if event is not None:
        then, then_params = also or ("", [])
        pk = write_with_event(sql, params, event, then=then, then_params=then_params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        pk = None if row is None else row[0]
    if pk is None:
        forget_encryption_key()
        return False
    mark_inserted(record_row, pk, using=connection.alias)
    return True


@dataclass(frozen=True)
class RevealedCard:
    """A card number out of the vault, for the gateway call only. ``repr`` hides it."""

    number: str = field(repr=False)
    brand: Brand
    exp_month: int
    exp_year: int
    last4: str


def may_reveal_cards(user: Any) -> bool:
    """Held explicitly (user or group); superuser status alone does not grant it."""
    user_model = get_user_model()
    if not isinstance(user, user_model) or not user.is_active:
        return False
    # One query, read live: the account is still active and holds the permission
    # (directly or through a group). Plain SQL: this runs before every card charge.
    app_label, codename = REVEAL_PERMISSION.split(".")
    with connection.cursor() as cursor:
        cursor.execute(_may_reveal_sql(), [app_label, codename, user.pk])
        return cursor.fetchone() is not None


@functools.cache
def _may_reveal_sql() -> str:
    user_model = get_user_model()
    quote = connection.ops.quote_name
    users = quote(user_model._meta.db_table)
    direct = quote(user_model.user_permissions.through._meta.db_table)
    member = quote(user_model.groups.through._meta.db_table)
    granted = quote(Group.permissions.through._meta.db_table)
    permissions = quote(Permission._meta.db_table)
    types = quote(ContentType._meta.db_table)
    return (
        f"WITH p AS (SELECT p.id FROM {permissions} p JOIN {types} t"  # noqa: S608
        " ON t.id = p.content_type_id WHERE t.app_label = %s AND p.codename = %s)"
        f" SELECT 1 FROM {users} u WHERE u.id = %s AND u.is_active AND ("
        f"EXISTS (SELECT 1 FROM {direct} d JOIN p ON p.id = d.permission_id"
        " WHERE d.user_id = u.id)"
        f" OR EXISTS (SELECT 1 FROM {member} m JOIN {granted} g ON g.group_id = m.group_id"
        " JOIN p ON p.id = g.permission_id WHERE m.user_id = u.id))"
    )


def _take_reveal_slot(user: Any) -> bool:
    """Count one reveal in the actor's current minute; False when the limit is reached."""
    # The common case in one statement: the actor's window is current and has room.
    if RevealWindow.objects.filter(
        actor_id=user.pk,
        window_start__gt=timezone.now() - datetime.timedelta(minutes=1),
        count__lt=settings.VAULT_REVEAL_RATE_PER_MINUTE,
    ).update(count=F("count") + 1):
        return True
    window = RevealWindow.objects.select_for_update().filter(actor_id=user.pk).first()
    if window is None:  # the actor's first reveal
        RevealWindow.objects.get_or_create(
            actor_id=user.pk, defaults={"window_start": timezone.now()}
        )
        window = RevealWindow.objects.select_for_update().get(actor_id=user.pk)
    # Read the clock only once the row is locked: a racer that waited for the lock
    # must not see the window as started "in its future" and reset it.
    now = timezone.now()
    if now - window.window_start >= datetime.timedelta(minutes=1):
        window.window_start, window.count = now, 0
    if window.count >= settings.VAULT_REVEAL_RATE_PER_MINUTE:
        return False
    window.count += 1
    window.save(update_fields=["window_start", "count"])
    return True


@compiled(str)
def _method_by_token(token: str) -> Any:
    return PaymentMethod.objects.filter(token=token)[:1]


def _refuse(
    reason: str,
    message: str,
    *,
    by: Actor,
    purpose: str,
    field: str = "",
    error: type[RevealRefused | PaymentMethodGone] = RevealRefused,
) -> NoReturn:
    with transaction.atomic():
        record("vault.reveal_refused", actor=by, purpose=purpose[:200], reason=reason)
    raise error(message, field=field)


@functools.cache
def _slot_sql() -> str:
    table = connection.ops.quote_name(RevealWindow._meta.db_table)
    return hot(
        f"UPDATE {table} SET count = count + 1"  # noqa: S608 (names only; values are parameters)
        " WHERE actor_id = %s AND window_start > %s AND count < %s"
        f" AND EXISTS ({_may_reveal_sql()}) RETURNING 1"
    )


def _slot_parameters(user: Any) -> list[Any]:
    app_label, codename = REVEAL_PERMISSION.split(".")
    since = timezone.now() - datetime.timedelta(minutes=1)
    return [user.pk, since, settings.VAULT_REVEAL_RATE_PER_MINUTE, app_label, codename, user.pk]


@functools.cache
def _slot_and_read_sql(method_sql: str) -> str:
    return hot(
        f"WITH s AS ({_slot_sql()}) SELECT EXISTS (SELECT 1 FROM s), m.*"  # noqa: S608
        f" FROM (SELECT 1) AS one LEFT JOIN ({method_sql}) AS m ON EXISTS (SELECT 1 FROM s)"
    )


def _take_slot_and_read(user: Any, token: str) -> tuple[bool, PaymentMethod | None]:
    """The common case of a reveal in one statement (PostgreSQL; one for every card
    payment): the account is active and holds the permission, its current minute has
    room, the slot is counted and then the card is read by its token. (False, None)
    says only that the slow path must decide (permission, a new window, the limit) and
    read the card itself; (True, None): the slot is counted and no card has the token."""
    if not is_postgresql() or not isinstance(user, get_user_model()):
        return False, None
    method_sql, method_params = _method_by_token.sql(token)
    with connection.cursor() as cursor:
        cursor.execute(_slot_and_read_sql(method_sql), [*_slot_parameters(user), *method_params])
        taken, *columns = cursor.fetchone()
    if not taken:
        return False, None
    if columns[0] is None:  # the slot is counted; no card has this token
        return True, None
    [method] = _method_by_token.results([tuple(columns)])
    return True, method


def reveal_card(token: str, *, purpose: str, by: Actor) -> RevealedCard:
    """Decrypt a card for ``purpose``: explicit permission, rate limit, audited either way.

    The slot is counted before the card is read, and the ``vault.card_revealed`` event
    is appended (committed, in autocommit) before the number is handed over.
    """
    purpose = purpose.strip() if isinstance(purpose, str) else ""
    if not purpose:
        raise RevealRefused("state why the card is revealed", field="purpose")
    token = token if isinstance(token, str) else ""
    taken, method = _take_slot_and_read(by, token)
    if not taken:
        if not may_reveal_cards(by):
            _refuse(
                "permission", "revealing cards needs payments.reveal_card", by=by, purpose=purpose
            )
        with transaction.atomic():
            allowed = _take_reveal_slot(by)
        if not allowed:
            _refuse(
                "rate_limit",
                "too many reveals in the last minute; try later",
                by=by,
                purpose=purpose,
            )
        method = _method_by_token.first(token)
    if method is None:
        _refuse(
            "unknown_token",
            "no payment method has this token",
            by=by,
            purpose=purpose,
            field="token",
        )
    # The secret is read on the vault's own connection (the web role cannot read it).
    active = method.status == PaymentMethod.Status.ACTIVE
    secret = secret_for_token(method.token) if active else None
    if secret is None:
        _refuse(
            "deleted" if not active else "no_secret",
            "the payment method was deleted" if not active else "the card's secret is missing",
            by=by,
            purpose=purpose,
            field="token",
            error=PaymentMethodGone,
        )
    number = crypto.open_sealed(
        secret.sealed(),
        key=unwrap_data_key(secret.data_key),
        key_id=secret.data_key.id,
        token=method.token,
    ).decode("ascii")
    record(
        REVEALED_ACTION,
        actor=by,
        obj=method,
        purpose=purpose[:200],
        brand=method.brand,
        last4=method.last4,
    )
    return RevealedCard(
        number=number,
        brand=Brand(method.brand),
        exp_month=method.exp_month,
        exp_year=method.exp_year,
        last4=method.last4,
    )


def delete_payment_method(method: PaymentMethod, *, by: Actor) -> PaymentMethod:
    """Erase the card's secret (crypto-shredding of this record); keep brand/last 4.

    The method is marked deleted first; its secret is erased when that commits (at once
    without a vault connection): an interruption between leaves an orphan secret, which
    the hourly key job erases, never a card that looks saved but cannot be charged."""
    with transaction.atomic():
        locked = PaymentMethod.objects.select_for_update().get(pk=method.pk)
        if locked.status == PaymentMethod.Status.DELETED:
            raise PaymentMethodGone("the payment method is already deleted", field="token")
        dek = secret_key_id(locked.token)
        key_id = f"{dek:08x}" if dek is not None else None
        locked.status = PaymentMethod.Status.DELETED
        locked.deleted_at = timezone.now()
        locked.save(update_fields=["status", "deleted_at"])
        erase_secret_after(locked.token)
        record(
            "vault.payment_method_deleted",
            actor=by,
            obj=locked,
            customer_id=locked.customer_id,
            brand=locked.brand,
            last4=locked.last4,
            key_id=key_id,
        )
    return locked


# --- key faults ------------------------------------------------------------------------

KEY_FAULT_ALERT = "vault.keys_unavailable"


def report_key_fault(
    fault: KeysUnavailable, *, operation: str, by: Actor, request: HttpRequest | None = None
) -> None:
    """Record that the vault's keys failed a card operation (``tokenize``, ``reveal``,
    ``entry_key``): the ``vault.key_fault`` audit event with the operator's detail, and an
    open security alert for the security officers (emailed, at most every
    SECURITY_ALERT_EMAIL_MINUTES). Its own transaction: the caller's work rolled back."""
    detail = fault.message[:600]
    with transaction.atomic():
        record(
            "vault.key_fault",
            actor=by,
            request=request,
            operation=operation,
            detail=detail,
        )
    raise_security_alert(
        kind=KEY_FAULT_ALERT,
        summary="Card payments are failing: the vault's keys cannot be used",
        detail=f"{operation}: {detail}",
        by=by,
        request=request,
    )


def card_payments_unavailable(
    fault: KeysUnavailable, *, operation: str, by: Actor, request: HttpRequest | None = None
) -> CardPaymentsUnavailable:
    """Report a key fault (``report_key_fault``) and give the one calm error customers see
    instead: card payments are unavailable right now, nothing was charged; no key id."""
    report_key_fault(fault, operation=operation, by=by, request=request)
    return CardPaymentsUnavailable(
        _("Card payments are unavailable right now; nothing was charged.")
    )


def card_entry_key(*, by: Actor, request: HttpRequest | None = None) -> EntryKey:
    """The card-entry key a card form encrypts to (rotated first when due); a key fault
    is reported and raised as CardPaymentsUnavailable."""
    try:
        return current_entry_key()
    except KeysUnavailable as fault:
        raise card_payments_unavailable(
            fault, operation="entry_key", by=by, request=request
        ) from None
