"""Benchmark backups: `manage.py backup`/`restore` against pg_dump/pg_restore alone.

Usage:
    .venv/bin/python bench/backup.py [--invoices N] [--lines-per-invoice L] [--events M]

DATABASE_URL names the PostgreSQL database to fill (default
postgres://postgres@127.0.0.1:5432/tillit_bench_backup). The script DROPS and recreates
that database and `<name>_restored`, so it refuses a name without "bench" in it. It
migrates it, fills it with N finalized invoices (default 100,000) of L lines each
(default 10: 1M lines) and M audit events (default 1,000,000), then measures, in one run
and on the same database:

1. the floor: `pg_dump --format=custom` to a file, and `pg_restore --single-transaction
   --exit-on-error --no-owner --no-acl` of that file into an empty database;
2. ours: `create_backup` (snapshot row counts, pg_dump through gpg, media, signed
   manifest) and `restore_backup` (signature, checksums, gpg into pg_restore) into an
   empty database, with a throw-away GnuPG key (Curve25519) made for the run.

Each pair runs twice, alternating, and the faster of each is kept. The ratios ours/floor
are the figures (goal: at most 1.5). The load average is printed beside them: on a
shared machine the figures mean little when it is high. Progress goes to stderr; the
last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tillit_bench_backup"
GOAL_RATIO = 1.5
ROUNDS = 2


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def connect_params(url: str, dbname: str | None = None) -> dict[str, Any]:
    import psycopg

    params: dict[str, Any] = dict(psycopg.conninfo.conninfo_to_dict(url))
    if dbname is not None:
        params["dbname"] = dbname
    return params


def recreate(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    if "bench" not in name:
        raise SystemExit(f"DATABASE_URL: refusing to drop {name!r}; use a dedicated *bench* DB")
    with psycopg.connect(**connect_params(url, "postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def fill(url: str, invoices: int, lines: int, events: int) -> None:
    """Finalized invoices with their lines and a chain-shaped audit log, in SQL (fast)."""
    import psycopg

    from billing.models import CompanyProfile, Customer, InvoiceSeries

    CompanyProfile.objects.create(
        legal_name="Bench AB",
        organisation_number="5566778899",
        address_line1="Gatan 1",
        postal_code="111 11",
        city="Stockholm",
        email="bench@example.com",
    )
    customers = [
        Customer.objects.create(name=f"Customer {n}", email=f"c{n}@bench.example")
        for n in range(100)
    ]
    series = InvoiceSeries.objects.get_or_create(
        code="F", defaults={"kind": "invoice", "is_default": True}
    )[0]
    first = customers[0].pk
    seller = json.dumps(CompanyProfile.objects.get().snapshot())
    with psycopg.connect(**connect_params(url)) as conn:
        # Generated rows are consistent by construction: triggers (the freeze, foreign
        # keys) are skipped while filling, as a restore would.
        conn.execute("SET session_replication_role = replica")
        say(f"  … {invoices:,} invoices")
        conn.execute(
            """
            INSERT INTO billing_invoice (kind, series_id, number, display_number, status,
                customer_id, issue_date, due_date, payment_terms_days, currency,
                seller_snapshot, buyer_snapshot, net_total, vat_total, gross_total,
                vat_breakdown, amount_paid, amount_credited, ocr_reference, notes,
                finalized_at, created_at, updated_at)
            SELECT 'invoice', %(series)s, n, 'F-' || lpad(n::text, 6, '0'), 'open',
                %(first)s + n %% 100, DATE '2026-01-01' + n %% 300,
                DATE '2026-01-31' + n %% 300, 30, 'SEK', %(seller)s::jsonb,
                jsonb_build_object('name', 'Customer ' || n %% 100, 'email',
                    'c' || n %% 100 || '@bench.example', 'country', 'SE'),
                %(lines)s * 10000, %(lines)s * 2500, %(lines)s * 12500,
                '[{"category": "S", "rate": "25.00", "net": 0, "vat": 0}]'::jsonb, 0, 0,
                lpad(n::text, 10, '0'), '', now(), now(), now()
            FROM generate_series(1, %(invoices)s) AS n
            """,
            {
                "series": series.pk,
                "first": first,
                "seller": seller,
                "lines": lines,
                "invoices": invoices,
            },
        )
        say(f"  … {invoices * lines:,} lines")
        conn.execute(
            """
            INSERT INTO billing_invoiceline (invoice_id, position, description, quantity, unit,
                unit_price, vat_category, vat_rate, net_amount)
            SELECT i.id, p, 'Consulting, item ' || p || ' of invoice ' || i.display_number,
                1.000, 'h', 100.00, 'S', 25.00, 10000
            FROM billing_invoice i, generate_series(1, %(lines)s) AS p
            """,
            {"lines": lines},
        )
        say(f"  … {events:,} audit events")
        conn.execute(
            """
            INSERT INTO audit_auditevent (seq, created_at, actor_type, actor_id, actor_label,
                action, object_type, object_id, ip, user_agent, details, prev_hash, hash)
            SELECT n, now() - (%(events)s - n) * interval '1 second', 'user', '7', 'clerk',
                'invoice.finalized', 'billing.invoice', (n %% 100000)::text, '192.0.2.10',
                'Mozilla/5.0 (bench)', jsonb_build_object('number', 'F-' || n),
                md5((n - 1)::text) || md5((n - 1)::text || 'x'),
                md5(n::text) || md5(n::text || 'x')
            FROM generate_series(1, %(events)s) AS n
            """,
            {"events": events},
        )
        conn.execute("ANALYZE")
        conn.commit()


def timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def floor_dump(url: str, dbname: str, output: Path) -> None:
    from audit.backups import postgres

    with output.open("wb") as handle:
        subprocess.run(  # noqa: S603 - the PostgreSQL client, our own arguments
            [postgres.program("pg_dump"), "--format=custom", f"--dbname={dbname}"],
            stdout=handle,
            check=True,
            env=postgres.client_env(),
        )


def floor_restore(dump: Path, target: str) -> None:
    from audit.backups import postgres

    subprocess.run(  # noqa: S603
        [
            postgres.program("pg_restore"),
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-acl",
            f"--dbname={target}",
            str(dump),
        ],
        check=True,
        env=postgres.client_env(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--lines-per-invoice", type=int, default=10)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    if min(args.invoices, args.lines_per_invoice, args.events) < 1:
        raise SystemExit("--invoices, --lines-per-invoice and --events must be at least 1")

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    name = str(connect_params(url)["dbname"])
    restored = f"{name}_restored"
    work = Path(tempfile.mkdtemp(prefix="tbb", dir="/tmp"))
    home = work / "g"
    home.mkdir(mode=0o700)
    say("Preparing: a throw-away GnuPG key, the bench databases")
    from audit.backups.gpg import generate_key

    fingerprint = generate_key(home, name="Tillit bench backups", email="bench@backups.example")
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.settings",
        BACKUP_DIR=str(work / "backups"),
        BACKUP_GNUPGHOME=str(home),
        BACKUP_GPG_RECIPIENTS=fingerprint,
        BACKUP_RESTORE_TEST_DATABASE=f"{name}_scratch",
        AUDIT_SIGNING_KEY_FILE=str(work / "keys" / "audit_ed25519.pem"),
        MEDIA_ROOT=str(work / "media"),
        DATABASE_CONN_MAX_AGE="0",
    )
    recreate(url, name)
    import django

    django.setup()
    from django.core.management import call_command

    from audit import SYSTEM
    from audit.backups import postgres
    from audit.backups.services import create_backup, restore_backup

    call_command("migrate", verbosity=0)
    say(f"1. Filling {name}")
    fill(url, args.invoices, args.lines_per_invoice, args.events)

    dump = work / "floor.dump"
    floor_dump_s: list[float] = []
    floor_restore_s: list[float] = []
    ours_backup_s: list[float] = []
    ours_restore_s: list[float] = []
    backup_size = 0
    for round_number in range(1, ROUNDS + 1):
        say(f"2. Round {round_number}/{ROUNDS}: pg_dump, pg_restore (floor)")
        floor_dump_s.append(timed(lambda: floor_dump(url, name, dump)))
        postgres.drop_database(restored)
        postgres.recreate_database(restored)
        floor_restore_s.append(timed(lambda: floor_restore(dump, restored)))
        say(f"3. Round {round_number}/{ROUNDS}: create_backup, restore_backup (ours)")
        started = time.perf_counter()
        run = create_backup(by=SYSTEM)
        ours_backup_s.append(time.perf_counter() - started)
        backup_size = run.size_bytes
        postgres.drop_database(restored)
        started = time.perf_counter()
        restore_backup(Path(run.path), database=restored, by=SYSTEM)
        ours_restore_s.append(time.perf_counter() - started)
        shutil.rmtree(run.path, ignore_errors=True)
        say(
            f"   floor {floor_dump_s[-1]:.1f} s + {floor_restore_s[-1]:.1f} s;"
            f" ours {ours_backup_s[-1]:.1f} s + {ours_restore_s[-1]:.1f} s"
        )
    postgres.drop_database(restored)
    load = os.getloadavg()
    result = {
        "invoices": args.invoices,
        "lines": args.invoices * args.lines_per_invoice,
        "audit_events": args.events,
        "floor_dump_s": round(min(floor_dump_s), 2),
        "floor_restore_s": round(min(floor_restore_s), 2),
        "backup_s": round(min(ours_backup_s), 2),
        "restore_s": round(min(ours_restore_s), 2),
        "dump_bytes": dump.stat().st_size,
        "backup_bytes": backup_size,
        "backup_ratio": round(min(ours_backup_s) / min(floor_dump_s), 2),
        "restore_ratio": round(min(ours_restore_s) / min(floor_restore_s), 2),
        "goal_ratio": GOAL_RATIO,
        "load_average": [round(x, 2) for x in load],
    }
    shutil.rmtree(work, ignore_errors=True)
    say(
        f"backup {result['backup_s']} s vs pg_dump {result['floor_dump_s']} s"
        f" (x{result['backup_ratio']}); restore {result['restore_s']} s vs pg_restore"
        f" {result['floor_restore_s']} s (x{result['restore_ratio']}); goal <= x{GOAL_RATIO};"
        f" sizes {result['backup_bytes']:,} vs {result['dump_bytes']:,} bytes;"
        f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
