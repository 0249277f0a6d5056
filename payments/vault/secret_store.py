"""The card secrets table, through the vault's database alias (``db.routers``).

Every read and write of ``CardSecret`` is here. With VAULT_DATABASE_URL set the alias is
a second connection as the vault role, the only role that may read the table, and its
writes commit on their own: a secret is written *before* its payment method (so a method
never exists without its secret) and erased *after* its method is marked deleted. A
failure between the two leaves an orphan secret, never a card without one; the hourly
key job erases orphans (``purge_orphan_secrets``). Without a vault alias the table is
read and written on ``default``, in the caller's transaction.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
from collections.abc import Iterable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from db.compiled import compiled
from db.dialect import is_postgresql
from db.prepared import hot
from db.routers import has_vault_connection, vault_alias
from payments.vault.models import CardSecret, DataKey


@functools.cache
def _guarded_insert_sql(postgres: bool) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    values = "%s::varchar, %s::bigint, %s::bytea, %s::timestamptz" if postgres else "%s, %s, %s, %s"
    # Only model metadata is formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(CardSecret._meta.db_table)}"  # noqa: S608
        " (token, data_key_id, ciphertext, created_at)"
        f" SELECT {values} WHERE EXISTS (SELECT 1 FROM {quote(DataKey._meta.db_table)}"
        " WHERE id = %s AND state = %s)"
    )
    return hot(sql) if postgres else sql


def secret_rides_with_card() -> bool:
    """Whether a card's secret is written by its payment method's own statement: on one
    PostgreSQL connection (no vault role) the method's INSERT carries the secret's as a
    CTE (``secret_cte``): one round trip, one commit, and no secret without its method."""
    return not has_vault_connection() and is_postgresql(DEFAULT_DB_ALIAS)


def secret_cte(secret: CardSecret) -> tuple[str, list[Any]]:
    """The secret's INSERT as a CTE after the method's (``w``, ``audit.write_with_event``'s
    ``then``): written only when the method was, i.e. while its data key is active (the
    method's statement checks the key under ``FOR SHARE``)."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    sql = (
        f"k AS (INSERT INTO {quote(CardSecret._meta.db_table)}"  # noqa: S608 (model metadata)
        " (token, data_key_id, ciphertext, created_at)"
        " SELECT %s::varchar, %s::bigint, %s::bytea, %s::timestamptz FROM w)"
    )
    return sql, [secret.token, secret.data_key_id, secret.ciphertext, secret.created_at]


def secret_and_card_transaction() -> Any:
    """The transaction a card's secret and its payment method are written in when they
    are two statements: one on ``default`` on the demo's SQLite (both commit together);
    none of its own with the vault role (``store_secret`` commits the secret on the vault
    connection first: a failure before the method commits leaves an orphan)."""
    if has_vault_connection() or secret_rides_with_card():
        return contextlib.nullcontext()
    return transaction.atomic(using=DEFAULT_DB_ALIAS)


def store_secret(secret: CardSecret) -> bool:
    """INSERT the secret if its data key is still the active one (committed, as seen by
    this statement); False (nothing written) when it is not: a key cached by this process
    and rotated, or never committed, meanwhile. On the vault connection the statement is
    its own transaction, committed before the payment method that refers to it."""
    alias = vault_alias()
    params: list[Any] = [
        secret.token,
        secret.data_key_id,
        secret.ciphertext,
        secret.created_at,
        secret.data_key_id,
        DataKey.State.ACTIVE,
    ]
    with connections[alias].cursor() as cursor:
        cursor.execute(_guarded_insert_sql(is_postgresql(alias)), params)
        return bool(cursor.rowcount == 1)


def erase_secret(token: str) -> int:
    """DELETE the secret of ``token`` now; the number of rows erased (0 or 1)."""
    count, _ = CardSecret.objects.using(vault_alias()).filter(token=token).delete()
    return int(count)


def erase_secret_after(token: str) -> None:
    """Erase the secret of ``token`` once the caller's transaction on ``default`` commits
    (the method is marked deleted first). Without a vault connection: now, in the same
    transaction, so the two commit together."""
    if has_vault_connection():
        transaction.on_commit(lambda: erase_secret(token), using=DEFAULT_DB_ALIAS)
    else:
        erase_secret(token)


@compiled(str)
def _secret_by_token(token: str) -> Any:
    return CardSecret.objects.select_related("data_key").filter(token=token)[:1]


def secret_for_token(token: str) -> CardSecret | None:
    """The secret of ``token`` with the data key it is sealed under (one statement)."""
    secret: CardSecret | None = _secret_by_token.first(token, using=vault_alias())
    return secret


def secret_key_id(token: str) -> int | None:
    """The id of the data key the secret of ``token`` is sealed under, or None."""
    return (
        CardSecret.objects.using(vault_alias())
        .filter(token=token)
        .values_list("data_key_id", flat=True)
        .first()
    )


def secrets_under(key: DataKey) -> int:
    """How many secrets are sealed under ``key``."""
    return CardSecret.objects.using(vault_alias()).filter(data_key_id=key.pk).count()


def secrets_per_key() -> dict[int, int]:
    """Secrets per data key id (the key status page)."""
    from django.db.models import Count

    rows = (
        CardSecret.objects.using(vault_alias())
        .values("data_key_id")
        .annotate(n=Count("token"))
        .values_list("data_key_id", "n")
    )
    return dict(rows)


def one_secret_under(key: DataKey) -> CardSecret | None:
    """Any one secret sealed under ``key`` (the restore test opens one per key)."""
    return CardSecret.objects.using(vault_alias()).filter(data_key_id=key.pk).order_by().first()


def lock_secrets_under(key: DataKey, *, limit: int) -> list[tuple[str, bytes]]:
    """Up to ``limit`` (token, ciphertext) sealed under ``key``, locked ``FOR UPDATE SKIP
    LOCKED`` in the caller's transaction on the vault alias (re-encryption)."""
    rows = (
        CardSecret.objects.using(vault_alias())
        .select_for_update(skip_locked=True)
        .filter(data_key_id=key.pk)
        .order_by("token")
        .values_list("token", "ciphertext")[:limit]
    )
    return [(token, bytes(blob)) for token, blob in rows]


def write_resealed(tokens: list[str], blobs: list[bytes], target: DataKey) -> None:
    """One UPDATE for the whole batch on PostgreSQL (unnest of arrays); row by row else."""
    alias = vault_alias()
    table = connections[alias].ops.quote_name(CardSecret._meta.db_table)
    with connections[alias].cursor() as cursor:
        if is_postgresql(alias):
            cursor.execute(
                f"UPDATE {table} AS s SET ciphertext = v.blob, data_key_id = %s "  # noqa: S608
                "FROM unnest(%s::varchar[], %s::bytea[]) AS v(token, blob)"
                " WHERE s.token = v.token",
                [target.pk, tokens, blobs],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET ciphertext = %s, data_key_id = %s WHERE token = %s",  # noqa: S608
                [(blob, target.pk, token) for token, blob in zip(tokens, blobs, strict=True)],
            )


def secret_tokens_before(cutoff: datetime.datetime, *, after: str, limit: int) -> list[str]:
    """Tokens of secrets written before ``cutoff``, in token order after ``after``."""
    return list(
        CardSecret.objects.using(vault_alias())
        .filter(created_at__lt=cutoff, token__gt=after)
        .order_by("token")
        .values_list("token", flat=True)[:limit]
    )


def erase_secrets(tokens: Iterable[str], *, before: datetime.datetime) -> int:
    """Erase the secrets of ``tokens`` written before ``before``; how many."""
    count, _ = (
        CardSecret.objects.using(vault_alias())
        .filter(token__in=list(tokens), created_at__lt=before)
        .delete()
    )
    return int(count)


def sealed_tokens(tokens: Iterable[str]) -> set[str]:
    """Which of ``tokens`` have a secret."""
    return set(
        CardSecret.objects.using(vault_alias())
        .filter(token__in=list(tokens))
        .values_list("token", flat=True)
    )
