"""Benchmark: the Python instructions of a card payment, counted by valgrind's callgrind.

Usage (PostgreSQL; the database is created if missing, migrated and filled; needs
valgrind, Debian's package ``valgrind``)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench_instructions \\
        .venv/bin/python bench/payment_instructions.py [--payments 100]

Timed figures on a shared 2-core VM swing by a third from minute to minute, more
than most changes to the code; the instructions a payment executes do not. This
pays ``--payments`` invoices with a saved card through Django's test client (the
whole middleware stack, the pay view, the services), after 10 payments to warm up,
inside one ``functools.reduce`` call, and counts only what runs inside that call
(``--toggle-collect=functools_reduce``). Every payment must succeed. Two runs of
the same code agree within 0.05%. PostgreSQL's own work is not counted (it runs in
its server process): changes to round trips still need ``bench/payments.py``.

About a minute for 100 payments (valgrind runs Python about 50 times slower). The
last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("VAULT_REVEAL_RATE_PER_MINUTE", "100000000")
WARM_UP = 10


def prepare(payments: int, data_file: Path) -> None:
    """The database, a customer with a saved card and its invoices (bench/payments.py's)."""
    from bench import payments as card_bench
    from bench._db import settle_database

    card_bench.setup_django()
    print(f"set-up: {WARM_UP + payments} invoices", flush=True)
    data = card_bench.make_data(WARM_UP + payments, 0)
    settle_database(card_bench._SET_UP_TABLES)
    data_file.write_text(
        json.dumps({"username": data["username"], "card": data["card"], "ids": data["pay_ids"]})
    )


def pay_all(data_file: Path) -> None:
    """Under valgrind: sign in, warm up, then pay every invoice inside functools.reduce."""
    import django

    django.setup()
    from django.test import Client

    import config.wsgi  # noqa: F401 (loads and freezes what a gunicorn worker does)
    from bench.payments import PASSWORD
    from payments.models import Payment

    data = json.loads(data_file.read_text())
    client = Client(HTTP_HOST="127.0.0.1")

    def post(path: str, form: dict[str, object]) -> object:
        body = urllib.parse.urlencode(form)
        return client.post(path, body, content_type="application/x-www-form-urlencoded")

    answer: object = post("/account/login/", {"username": data["username"], "password": PASSWORD})
    assert getattr(answer, "status_code", None) == 302, "sign-in failed"

    def pay(_: None, invoice_id: int) -> None:
        form = {
            "amount": "100.00",
            "payment_method": data["card"],
            "idempotency_key": f"instructions-{invoice_id}-{time.time_ns()}",
        }
        answer = post(f"/portal/invoices/{invoice_id}/pay/", form)
        assert getattr(answer, "status_code", None) == 302, f"invoice {invoice_id}: not paid"

    ids: list[int] = data["ids"]
    for invoice_id in ids[:WARM_UP]:
        pay(None, invoice_id)
    functools.reduce(pay, ids[WARM_UP:], None)  # the counted part
    paid = Payment.objects.filter(invoice_id__in=ids, status=Payment.Status.SUCCEEDED).count()
    print(f"paid: {paid} of {len(ids)} succeeded", flush=True)
    if paid != len(ids):
        sys.exit("not every payment succeeded: the count would not be a payment's")


def count(data_file: Path, payments: int) -> int:
    """Run ``pay_all`` under callgrind; the instructions counted inside the reduce."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--toggle-collect=functools_reduce",
            f"--callgrind-out-file={scratch}/callgrind.out",
            sys.executable,
            str(Path(__file__).resolve()),
            "--pay-from",
            str(data_file),
        ]
        print(f"counting: {payments} payments under valgrind (about 0.6 s each)", flush=True)
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    print(done.stdout.strip(), flush=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        sys.exit(f"valgrind run failed:\n{done.stderr[-2000:]}")
    collected = int(found.group(1))
    if collected == 0:
        sys.exit("valgrind saw no functools_reduce call: this Python's symbols are stripped")
    return collected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=100)
    parser.add_argument("--pay-from", type=Path, help=argparse.SUPPRESS)  # the valgrind child
    args = parser.parse_args()
    if args.pay_from:
        pay_all(args.pay_from)
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind is needed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as scratch:
        data_file = Path(scratch) / "invoices.json"
        prepare(args.payments, data_file)
        collected = count(data_file, args.payments)
    per_payment = collected / args.payments
    print(f"instructions: {collected:,} for {args.payments} payments")
    print(f"per payment: {per_payment / 1e6:.3f} M instructions of Python (and the driver)")
    print(
        json.dumps(
            {
                "payments": args.payments,
                "instructions": collected,
                "instructions_per_payment": round(per_payment),
            }
        )
    )


if __name__ == "__main__":
    main()
