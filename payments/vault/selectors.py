"""Vault reads: key status for security officers, a customer's saved cards."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from billing.models import Customer
from payments.vault.models import DataKey, EntryKey, PaymentMethod
from payments.vault.secret_store import sealed_tokens, secrets_per_key
from security.keyring import KeyringError, get_keyring


@dataclass
class KeyRow:
    key_id: str
    state: str
    kek_version: int
    created_at: datetime.datetime
    age: datetime.timedelta
    retired_at: datetime.datetime | None
    destroyed_at: datetime.datetime | None
    records: int
    encrypts_until: datetime.datetime | None = None


@dataclass
class KeyStatus:
    """What the key status page shows; no key material."""

    active: KeyRow | None
    decrypt_only: list[KeyRow]
    destroyed: list[KeyRow]
    kek_current: int | None
    kek_versions: list[int]
    keyring_name: str
    keyring_error: str
    entry_keys: list[dict[str, Any]] = field(default_factory=list)
    kek_versions_in_use: list[int] = field(default_factory=list)


def get_key_status(*, destroyed_limit: int = 20) -> KeyStatus:
    """Active DEK and age, decrypt-only DEKs with the records each still protects, KEKs."""
    now = timezone.now()
    rows = DataKey.objects.order_by("-created_at")
    records = secrets_per_key()  # read on the vault's connection
    active: KeyRow | None = None
    decrypt_only: list[KeyRow] = []
    destroyed: list[KeyRow] = []
    for key in rows.exclude(state=DataKey.State.DESTROYED):
        row = KeyRow(
            key_id=key.hex_id,
            state=key.state,
            kek_version=key.kek_version,
            created_at=key.created_at,
            age=now - key.created_at,
            retired_at=key.retired_at,
            destroyed_at=key.destroyed_at,
            records=records.get(key.pk, 0),
            encrypts_until=key.encrypts_until() if key.state == DataKey.State.ACTIVE else None,
        )
        if key.state == DataKey.State.ACTIVE:
            active = row
        else:
            decrypt_only.append(row)
    for key in rows.filter(state=DataKey.State.DESTROYED)[:destroyed_limit]:
        destroyed.append(
            KeyRow(
                key_id=key.hex_id,
                state=key.state,
                kek_version=key.kek_version,
                created_at=key.created_at,
                age=now - key.created_at,
                retired_at=key.retired_at,
                destroyed_at=key.destroyed_at,
                records=0,
            )
        )
    kek_current: int | None = None
    kek_versions: list[int] = []
    keyring_name = ""
    keyring_error = ""
    try:
        keyring = get_keyring()
        kek_current, kek_versions, keyring_name = (
            keyring.current_version(),
            keyring.versions(),
            keyring.name,
        )
    except (KeyringError, Exception) as exc:  # the page must still load to show the fault
        keyring_error = type(exc).__name__
    in_use = sorted(
        set(
            DataKey.objects.exclude(state=DataKey.State.DESTROYED).values_list(
                "kek_version", flat=True
            )
        )
    )
    entry_keys = [
        {"kid": k.kid, "state": k.state, "created_at": k.created_at, "kek_version": k.kek_version}
        for k in EntryKey.objects.exclude(state=EntryKey.State.EXPIRED)
    ]
    return KeyStatus(
        active=active,
        decrypt_only=decrypt_only,
        destroyed=destroyed,
        kek_current=kek_current,
        kek_versions=kek_versions,
        keyring_name=keyring_name,
        keyring_error=keyring_error,
        entry_keys=entry_keys,
        kek_versions_in_use=in_use,
    )


def get_payment_methods_for_customer(customer: Customer | int) -> QuerySet[PaymentMethod]:
    """A customer's active saved cards (brand, last 4, expiry only are ever shown); a card
    tokenized for one payment only (``saved`` False) is never one of them."""
    customer_id = customer.pk if isinstance(customer, Customer) else customer
    return PaymentMethod.objects.filter(
        customer_id=customer_id, status=PaymentMethod.Status.ACTIVE, saved=True
    )


def get_portal_customer(user: Any) -> Customer:
    """The customer a signed-in portal user acts for; 404 for anyone else (staff included)."""
    from django.http import Http404

    from billing.selectors import customer_for_user

    customer = customer_for_user(user)
    if customer is None:
        raise Http404("no portal account")
    return customer


def get_payment_method_for_user(user: Any, pk: int) -> PaymentMethod:
    """One of the user's customer's active cards; 404 for any other (Bob never sees Alice's)."""
    from django.http import Http404

    customer = get_portal_customer(user)
    method = get_payment_methods_for_customer(customer).filter(pk=pk).first()
    if method is None:
        raise Http404("no such payment method")
    return method


def active_cards_sealed(*, chunk: int = 1000) -> tuple[bool, int]:
    """(every active card has its secret in the vault, how many active cards): evidence
    for PCI DSS 3.5.1 in the security review. Read in chunks on both connections."""
    tokens = PaymentMethod.objects.filter(status=PaymentMethod.Status.ACTIVE).values_list(
        "token", flat=True
    )
    total = 0
    all_sealed = True
    batch: list[str] = []
    for token in tokens.order_by("token").iterator(chunk_size=chunk):
        batch.append(token)
        if len(batch) == chunk:
            all_sealed = all_sealed and len(sealed_tokens(batch)) == len(batch)
            total, batch = total + len(batch), []
    if batch:
        all_sealed = all_sealed and len(sealed_tokens(batch)) == len(batch)
        total += len(batch)
    return all_sealed, total
