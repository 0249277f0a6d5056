"""Benchmark the card vault: raw floor, tokenize, reveal, re-encryption, KEK rewrap.

Usage (PostgreSQL; the database is created and migrated if missing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench \\
        .venv/bin/python bench/vault.py [--ops 2000] [--records 100000]

DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/tillit_bench. The
benchmark keeps its own keyring in var/bench/vault_keyring.json (never the demo's);
its records are deleted at the end.

(a) raw floor: AES-256-GCM encrypt + a one-row INSERT per transaction with
    psycopg on the same database (no Django, no audit);
(b) ``tokenize`` and ``reveal_card`` through the project's code (validation,
    fingerprint, DEK share lock, envelope encryption, audit event, rate check);
(c) re-encryption of ``--records`` records after a DEK rotation
    (``reencrypt_vault``, batches of VAULT_REENCRYPT_BATCH), then destruction;
(d) KEK rotation: rewrap of every live DEK (after 100 rotations) and entry key.

``--vault-role``: the card secrets behind the vault role (docs/vault.md, "The vault
role"), as in production: roles ``tillit_bench_web`` (NOLOGIN) and ``tillit_bench_vault``
are created if missing, VAULT_DATABASE_URL connects as the latter, and (b) and (c) read
and write the secrets on that second connection. Without it the secrets table is on
the one connection (an install without VAULT_DATABASE_URL).

Prints progress and ends with one line of JSON holding the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._db import ensure_database, settle_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tillit_bench"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The bench's own keyring (kept between runs so earlier runs' keys still unwrap).
_KEYS = str(Path(__file__).resolve().parent.parent / "var" / "bench" / "vault_keyring.json")
os.environ["VAULT_KEYRING_FILE"] = _KEYS
os.environ["VAULT_KEYRING_CREATE"] = "true"

VISA_PREFIX = "411111"


def card_numbers(n: int) -> list[str]:
    """``n`` distinct valid Visa numbers (Luhn)."""
    from stdnum import luhn

    numbers = []
    for i in range(n):
        partial = f"{VISA_PREFIX}{i:09d}"
        numbers.append(partial + luhn.calc_check_digit(partial))
    return numbers


def raw_floor(n: int) -> float:
    """AES-256-GCM + one-row INSERT per committed transaction, straight psycopg."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from django.db import connection

    key = AESGCM(AESGCM.generate_key(bit_length=256))
    numbers = card_numbers(n)
    connection.ensure_connection()
    params = connection.get_connection_params()
    import psycopg

    with psycopg.connect(**params) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_vault_raw "
            "(id bigserial PRIMARY KEY, token text NOT NULL, blob bytea NOT NULL)"
        )
        conn.execute("TRUNCATE bench_vault_raw")
        conn.commit()
        start = time.perf_counter()
        for number in numbers:
            token = "tok_" + secrets.token_urlsafe(24)
            nonce = secrets.token_bytes(12)
            blob = nonce + key.encrypt(nonce, number.encode(), token.encode())
            conn.execute("INSERT INTO bench_vault_raw (token, blob) VALUES (%s, %s)", [token, blob])
            conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bench_vault_raw")
        conn.commit()
    return n / elapsed


def _use_vault_role(url: str) -> None:
    """Create the bench's web and vault roles if missing; the vault alias connects as the
    vault role (set before Django reads its settings)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        for role, login in (("tillit_bench_web", False), ("tillit_bench_vault", True)):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                options = sql.SQL("LOGIN" if login else "NOLOGIN")
                conn.execute(sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(role), options))
    user = url.split("://", 1)[1].split("@", 1)[0]
    os.environ["VAULT_DATABASE_URL"] = url.replace(f"://{user}@", "://tillit_bench_vault@", 1)
    os.environ["DATABASE_WEB_ROLE"] = "tillit_bench_web"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=2000, help="tokenize/reveal/raw operations")
    parser.add_argument("--records", type=int, default=100_000, help="records to re-encrypt")
    parser.add_argument(
        "--vault-role", action="store_true", help="the secrets on a second connection (role)"
    )
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    if args.vault_role:
        _use_vault_role(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Permission
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    if args.vault_role:
        call_command("grant_vault_role")
    import logging

    logging.getLogger("django-q").setLevel(logging.WARNING)  # no "Enqueued" line per rotation
    settings.VAULT_REVEAL_RATE_PER_MINUTE = 10**9  # measure the work, not the limiter

    from audit import SYSTEM
    from billing.models import Customer
    from db.routers import vault_alias
    from payments.models import CardSecret, DataKey
    from payments.vault import crypto, keys
    from payments.vault import services as key_services
    from payments.vault.cards import Card
    from payments.vault.services import reveal_card, tokenize
    from security.models import User

    customer = Customer.objects.filter(name="Bench Vault AB").first()
    if customer is None:
        from billing.services import create_customer

        customer = create_customer(by=SYSTEM, name="Bench Vault AB", email="vault@bench.example")
    gateway, _ = User.objects.get_or_create(username="bench-gateway")
    gateway.user_permissions.add(
        Permission.objects.get(content_type__app_label="payments", codename="reveal_card")
    )
    print(
        f"database {connection.settings_dict['NAME']}, keyring {_KEYS},"
        f" card secrets on alias {vault_alias()!r}",
        flush=True,
    )
    # Earlier runs deleted their 100,000 records (c): reclaim them, or every insert
    # below pays for index pages full of dead entries.
    # Flush what set-up dirtied now, not in the background while (a) and (b) run:
    # both then start from the same state, just after a checkpoint.
    settle_database(
        (
            "payments_paymentmethod",
            "payments_vault_cardsecret",
            "payments_datakey",
            "payments_revealwindow",
        )
    )

    # (a)
    print(f"(a) raw floor: {args.ops} x (AES-GCM + INSERT + COMMIT) ...", flush=True)
    raw_rate = raw_floor(args.ops)
    print(f"    {raw_rate:,.0f} ops/s", flush=True)

    # (b)
    key_services.rotate_data_key(by=SYSTEM)  # a fresh active DEK for this run
    numbers = card_numbers(args.ops)
    print(f"(b) tokenize {args.ops} cards ...", flush=True)
    tokens = []
    start = time.perf_counter()
    for number in numbers:
        card = Card(number=number, exp_month=12, exp_year=2039, cvc="123")
        tokens.append(tokenize(card, customer=customer, by=SYSTEM).token)
    tokenize_rate = args.ops / (time.perf_counter() - start)
    print(f"    {tokenize_rate:,.0f} tokenize/s", flush=True)
    print(f"    reveal {args.ops} cards ...", flush=True)
    start = time.perf_counter()
    for token, number in zip(tokens, numbers, strict=True):
        if reveal_card(token, purpose="benchmark", by=gateway).number != number:
            raise SystemExit("reveal returned the wrong number")
    reveal_rate = args.ops / (time.perf_counter() - start)
    print(f"    {reveal_rate:,.0f} reveal/s", flush=True)

    # (c) load secrets directly under the active DEK (tokenize would take minutes); the
    # re-encryption reads and writes the secrets table only.
    print(f"(c) loading {args.records:,} card secrets under the active DEK ...", flush=True)
    key = DataKey.objects.get(state=DataKey.State.ACTIVE)
    dek = keys.unwrap_data_key(key)
    batch: list[CardSecret] = []
    loaded: list[str] = []
    now = timezone.now()
    for i in range(args.records):
        token = "tok_" + secrets.token_urlsafe(24)
        number = numbers[i % len(numbers)]
        loaded.append(token)
        batch.append(
            CardSecret(
                token=token,
                data_key_id=key.pk,
                ciphertext=crypto.seal(number.encode(), key=dek, key_id=key.id, token=token),
                created_at=now,
            )
        )
        if len(batch) == 5000:
            with transaction.atomic(using=vault_alias()):
                CardSecret.objects.bulk_create(batch)
            batch = []
            print(f"    {i + 1:,} loaded", flush=True)
    if batch:
        CardSecret.objects.bulk_create(batch)
    pending = CardSecret.objects.filter(data_key_id=key.pk).count()
    key_services.rotate_data_key(by=SYSTEM)
    print(f"    rotated; re-encrypting {pending:,} records ...", flush=True)
    start = time.perf_counter()
    last = [start]

    def progress(line: str) -> None:
        if time.perf_counter() - last[0] > 2 or "destroyed" in line:
            last[0] = time.perf_counter()
            print(f"    {line}", flush=True)

    report = key_services.reencrypt_vault(by=SYSTEM, progress=progress)
    reencrypt_seconds = time.perf_counter() - start
    reencrypt_rate = report.reencrypted / reencrypt_seconds
    print(
        f"    {report.reencrypted:,} re-encrypted in {reencrypt_seconds:.1f} s "
        f"({reencrypt_rate:,.0f} records/s); destroyed {report.destroyed}",
        flush=True,
    )

    # (d)
    rotations = 100
    print(f"(d) {rotations} DEK rotations, then rotate_kek ...", flush=True)
    for _ in range(rotations):
        key_services.rotate_data_key(by=SYSTEM)
    live = DataKey.objects.exclude(state=DataKey.State.DESTROYED).count()
    start = time.perf_counter()
    kek = key_services.rotate_kek(by=SYSTEM, retire_old=True)
    kek_seconds = time.perf_counter() - start
    print(
        f"    rewrapped {kek.data_keys} DEKs + {kek.entry_keys} entry keys under KEK "
        f"v{kek.kek_version} in {kek_seconds * 1000:.0f} ms",
        flush=True,
    )
    key_services.reencrypt_vault(by=SYSTEM)  # destroy the empty decrypt-only keys again
    # Keep the bench database small (one statement: the records have no payments).
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_paymentmethod WHERE customer_id = %s", [customer.pk])
        cursor.execute(
            "DELETE FROM payments_vault_cardsecret WHERE token = ANY(%s)", [tokens + loaded]
        )
        cursor.execute("VACUUM payments_paymentmethod")  # the next run starts from a clean table
        cursor.execute("VACUUM payments_vault_cardsecret")

    figures: dict[str, Any] = {
        "benchmark": "vault",
        "card_secrets_on": "vault role (second connection)" if args.vault_role else "default",
        "ops": args.ops,
        "raw_floor_ops_per_s": round(raw_rate),
        "tokenize_per_s": round(tokenize_rate),
        "reveal_per_s": round(reveal_rate),
        "tokenize_to_raw_ratio": round(tokenize_rate / raw_rate, 3),
        "reencrypt_records": report.reencrypted,
        "reencrypt_records_per_s": round(reencrypt_rate),
        "kek_rewrap_data_keys": live,
        "kek_rewrap_ms": round(kek_seconds * 1000),
    }
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
