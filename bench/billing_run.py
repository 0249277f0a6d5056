"""Benchmark: create N draft invoices of 10 lines, then finalize them, through the services.

Usage (PostgreSQL; the database is created and migrated if missing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench \\
        .venv/bin/python bench/billing_run.py [--sizes 100,1000,10000] [--batch 100]

Drafts are created one by one (services.create_draft_invoice, 10 lines each),
then finalized in billing runs of --batch invoices (services.finalize_invoices:
one transaction per run, one audit event per invoice); --batch 1 finalizes each
invoice in its own transaction (services.finalize_invoice).

DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/tillit_bench. Each size
uses a fresh numbering series, so runs never collide. Prints progress, the
finalization rate (invoices/s), database queries per invoice, and ends with one
line of JSON holding the figures. No PDF is rendered (that comes with documents).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._db import ensure_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tillit_bench"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# No PDF: finalization queues no document job (see billing.documents.hooks).
os.environ.setdefault("DOCUMENTS_ON_FINALIZE", "off")
# Finalization alone: no PDF job is queued (bench/documents.py measures documents).
os.environ.setdefault("DOCUMENTS_ON_FINALIZE", "off")


class QueryCounter:
    """Counts the SQL statements Django sends (a connection execute wrapper)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def run_size(n: int, batch: int) -> dict[str, Any]:
    from django.db import connection

    from audit import SYSTEM
    from billing import services
    from billing.models import Customer, InvoiceKind, InvoiceSeries

    series = InvoiceSeries.objects.create(
        code=f"B{uuid.uuid4().hex[:8].upper()}", kind=InvoiceKind.INVOICE, name=f"bench {n}"
    )
    customer = Customer.objects.filter(name="Bench Customer AB").first()
    if customer is None:
        customer = services.create_customer(
            by=SYSTEM,
            name="Bench Customer AB",
            email="bench@customer.example",
            identity_number="556677-8899",
            country="SE",
        )
    lines = [
        {
            "description": f"Item {i}",
            "quantity": Decimal(i) / 2,
            "unit_price": Decimal("199.99") + i,
            "vat_category": "S",
            "vat_rate": Decimal(("25", "12", "6")[i % 3]),
        }
        for i in range(1, 11)
    ]
    step = max(1, n // 10)

    counter = QueryCounter()
    drafts = []
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        for i in range(n):
            drafts.append(
                services.create_draft_invoice(
                    customer=customer, lines=lines, series=series, by=SYSTEM
                )
            )
            if (i + 1) % step == 0:
                print(f"  N={n}: created {i + 1}/{n}", flush=True)
    create_seconds = time.perf_counter() - started
    create_queries = counter.count

    counter = QueryCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        done = 0
        for start in range(0, n, batch):
            run = drafts[start : start + batch]
            if batch == 1:
                services.finalize_invoice(run[0], by=SYSTEM)
            else:
                services.finalize_invoices(run, by=SYSTEM)
            for _ in run:
                done += 1
                if done % step == 0:
                    print(f"  N={n}: finalized {done}/{n}", flush=True)
    finalize_seconds = time.perf_counter() - started
    finalize_queries = counter.count

    series.refresh_from_db()
    assert series.next_number == n + 1, "numbering must be gapless"
    result = {
        "n": n,
        "lines_per_invoice": len(lines),
        "finalize_batch": batch,
        "create_seconds": round(create_seconds, 3),
        "created_per_second": round(n / create_seconds, 1),
        "create_queries_per_invoice": round(create_queries / n, 2),
        "finalize_seconds": round(finalize_seconds, 3),
        "finalized_per_second": round(n / finalize_seconds, 1),
        "finalize_queries_per_invoice": round(finalize_queries / n, 2),
        "end_to_end_per_second": round(n / (create_seconds + finalize_seconds), 1),
    }
    print(
        f"N={n}: finalized {result['finalized_per_second']}/s "
        f"({result['finalize_queries_per_invoice']} queries/invoice); "
        f"created {result['created_per_second']}/s "
        f"({result['create_queries_per_invoice']} queries/invoice)",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default="100,1000,10000",
        help="comma-separated numbers of invoices (default 100,1000,10000)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=100,
        help="invoices per billing run (services.finalize_invoices); 1 finalizes them one"
        " at a time with services.finalize_invoice (default 100)",
    )
    args = parser.parse_args()
    if args.batch < 1:
        parser.error("--batch: must be a positive integer")
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes: a comma-separated list of integers, e.g. 100,1000")
    if not sizes or any(n <= 0 for n in sizes):
        parser.error("--sizes: every size must be a positive integer")

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from billing.models import CompanyProfile

    CompanyProfile.objects.update_or_create(
        singleton=1,
        defaults={
            "legal_name": "Bench Seller AB",
            "organisation_number": "556036-0793",
            "vat_number": "SE556036079301",  # EN 16931 needs it on every VAT category
            "address_line1": "Storgatan 1",
            "postal_code": "111 22",
            "city": "Stockholm",
            "email": "billing@bench.example",
        },
    )
    results = [run_size(n, args.batch) for n in sizes]
    print(json.dumps({"benchmark": "billing_run", "results": results}))


if __name__ == "__main__":
    main()
