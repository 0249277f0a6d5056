"""Benchmark: card payments through the portal under gunicorn, and a 100,000-line camt.054.

Usage (PostgreSQL; the database is created if missing, migrated and filled)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench .venv/bin/python bench/payments.py
    # PostgreSQL on this host over its Unix socket (the single-host deployment):
    #   DATABASE_URL="postgres://postgres@/tillit_bench?host=/var/run/postgresql"
    # options: --rates 40,80,120,150,160 --seconds 8 --threads 1 --camt-lines 100000
    #          --camt-matched 2000 --only camt (skip part 1: no gunicorn, no card payments)
    #          --engine both|on|off (the fraud engine, FRAUD_ENGINE_ENABLED; default both)
    #          --payers 1,50 (paying customers per run, a card each; default 1: one card)
    #          --rounds 2 (engine off, on, off, on: each mode's best run counts)

Part 1 starts the project under gunicorn (2 workers: sync by default, gthread with
--threads N > 1; 127.0.0.1), signs a portal customer in, and posts
card payments with a saved card (the vault reveals it for the sandbox acquirer) for
distinct invoices at increasing rates (open loop: sent on schedule whatever the answers).
Each server first gets a warm-up of a few payments, not counted (a fresh worker's first
payment loads what a long-running one holds). It prints throughput, p50/p99 latency,
errors and the server's CPU per payment (its workers and their database connections,
from /proc: it moves less with the machine's other load than throughput) per rate, then
checks that no invoice was charged twice (acquirer ledger against payments).

With ``--engine both`` (the default) part 1 runs twice on fresh invoices, first with
the fraud engine off (the safety rules alone), then on (lists, ten enabled rules, a live
model trained on a small simulation, the evaluation stored), and checks that the
engine's best throughput is at least 85% of the best without it (``engine_drop_ok``).
``--payers 1,50`` runs it all once per spread: one customer and card paying every invoice
(the engine's worst case: every attempt counts in the same counters), then fifty
customers with a card each, invoices dealt among them in turn (a realistic spread).

Part 2 imports a generated camt.054 file of ``--camt-lines`` credit lines, of
which ``--camt-matched`` pay open invoices (the rest have unknown references
and go to the review list), and prints the time.

First it times a fixed Python loop (``bench/_gauge.py``), a rough measure of the
machine's speed; the camt.054 import's time is the better one for this benchmark. The
last line of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The gateway account reveals one card per payment; lift the per-minute cap for the run.
os.environ.setdefault("VAULT_REVEAL_RATE_PER_MINUTE", "100000000")
from bench._cpu import ServerCpu  # noqa: E402 (after sys.path)
from bench._portal_load import PASSWORD, PORT, Session, run_rate  # noqa: E402

WARM_UP = 24  # payments sent before each run's timed rates (not counted)


# What set-up writes (invoices, their lines, events and queued document jobs) and
# what every run's payments leave behind.
_SET_UP_TABLES = (
    "billing_invoice",
    "billing_invoiceline",
    "audit_auditevent",
    "django_q_ormq",
    "payments_payment",
    "payments_idempotencykey",
    "payments_revealwindow",
)


def setup_django() -> None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (it is migrated and filled).")
    from bench._db import ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_data(invoices: int, matched: int, groups: list[int] | None = None) -> dict[str, object]:
    """Customers, each with a portal user and a saved card, and open invoices of 100.00 SEK.

    ``groups``: how many paying customers each run takes (default one group of one: the
    one card and customer paying every invoice, the fraud engine's worst case); each group
    has customers of its own and ``invoices`` open invoices dealt among them in turn."""
    from audit import SYSTEM
    from billing import services as billing
    from billing.models import InvoiceSeries, PortalAccount
    from payments.vault.cards import Card
    from payments.vault.services import tokenize
    from security.models import User

    for code, kind in (("F", "invoice"), ("K", "credit_note")):
        InvoiceSeries.objects.get_or_create(code=code, defaults={"kind": kind, "is_default": True})
    billing.update_company_profile(
        by=SYSTEM,
        legal_name="Bench AB",
        organisation_number="556036-0793",
        vat_number="SE556036079301",
        address_line1="Storgatan 1",
        postal_code="111 22",
        city="Stockholm",
        email="bench@tillit.example",
        bankgiro="5050-1055",
    )
    stamp = str(int(time.time()))
    spec = {"description": "Service", "quantity": Decimal(1), "unit_price": Decimal(80)}

    def invoice_for(customer: Any) -> Any:
        draft = billing.create_draft_invoice(
            customer=customer, by=SYSTEM, lines=[{**spec, "vat_category": "S", "vat_rate": 25}]
        )
        return billing.finalize_invoice(draft, by=SYSTEM)

    payers: list[dict[str, object]] = []
    pay_groups: list[list[tuple[int, int]]] = []
    made = 0
    for size in groups or [1]:
        group = []
        for _ in range(size):
            n = len(payers)
            customer = billing.create_customer(
                by=SYSTEM,
                name=f"Bench customer {stamp}-{n}",
                email=f"pay{stamp}-{n}@bench{n % 7}.example",
            )
            user = User.objects.create_user(
                username=f"bench{stamp}-{n}",
                email=f"bench{stamp}-{n}@bench.example",
                password=PASSWORD,
            )
            PortalAccount.objects.create(user=user, customer=customer)
            number = f"4242424242{n:06d}"
            number = number[:-1] + str(_luhn_digit(number[:-1]))
            card = tokenize(
                Card.from_input(number=number, expiry="12/39", cvc="123"),
                customer=customer,
                by=user,
            )
            # Each payer at an address of their own, new with each run of the script (the
            # card-testing rules count the cards seen at an address).
            address = f"10.{int(stamp) % 250}.{n // 250}.{n % 250 + 1}"
            payers.append(
                {"username": user.email, "card": card.pk, "customer": customer, "address": address}
            )
            group.append(n)
        invoices_of = []
        for k in range(invoices):
            payer = group[k % len(group)]
            invoices_of.append((payer, invoice_for(payers[payer]["customer"]).pk))
            made += 1
            if made % 500 == 0:
                print(f"  set-up: {made} invoices", flush=True)
        pay_groups.append(invoices_of)
    first = payers[0]["customer"]
    camt_refs = [invoice_for(first).ocr_reference for _ in range(matched)]
    fraud_configuration([paying["customer"] for paying in payers])
    for paying in payers:
        del paying["customer"]
    return {"payers": payers, "pay_groups": pay_groups, "camt_refs": camt_refs}


def _luhn_digit(digits: str) -> int:
    """The Luhn check digit that makes ``digits`` + it a valid card number."""
    total = 0
    for n, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if n % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def fraud_configuration(customers: list[Any]) -> None:
    """What an installation's analysts might keep: ten enabled rules and a few block-list
    entries, none matching the bench's payments (one card, one customer, thousands of
    payments: the thresholds are set past them), and a live model. The model rightly scores
    a card paying every few milliseconds as fraud (about 95), so the paying customers are on
    the allow list, as a merchant's known customers are: every attempt still computes its
    features, reads the lists, scores and stores its evaluation, and is charged."""
    from audit import SYSTEM
    from payments.fraud.models import FraudModelVersion, FraudRule
    from payments.fraud.rule_services import add_list_entry, create_fraud_rule
    from payments.fraud.simulator import SimulationSettings, simulate
    from payments.fraud.training import train_model_version
    from payments.fraud.training.promote import promote_model_version
    from security.models import User

    analyst, _ = User.objects.get_or_create(
        username="bench-analyst", defaults={"is_staff": True, "is_superuser": True}
    )
    rules = [
        ("block", "card_attempts_10m > 100000"),
        ("block", "ip_cards_1h > 1000 and customer_first_payment"),
        ("review", "amount_eur > 20000 and card_new_for_customer"),
        ("review", "customer_amount_zscore > 6"),
        ("review", 'card_country_mismatch and card_country in ["NG", "RU", "KP"]'),
        ("step_up", "amount_eur > 50000 and ip_country_mismatch"),
        ("allow", 'email_domain == "trusted.example" and customer_payments_before > 50'),
        ("block", "customer_attempts_1h > 100000"),
        ("review", "amount_to_invoice_ratio > 1.5"),
        ("review", "card_customers_1d > 1000"),
    ]
    entries: tuple[tuple[str, str], ...] = (
        ("country", "KP"),
        ("ip", "203.0.113.0/24"),
        ("email_domain", "spam.example"),
    )
    if FraudRule.objects.filter(description__startswith="bench rule").exists():
        rules, entries = [], ()  # kept from an earlier run on this database
    for n, (action, expression) in enumerate(rules):
        create_fraud_rule(
            action=action,
            expression=expression,
            description=f"bench rule {n}",
            enabled=True,
            by=analyst,
        )
    for key, value in entries:
        add_list_entry(list="block", key=key, value=value, reason="bench", by=analyst)
    for customer in customers:
        add_list_entry(
            list="allow", key="customer", value=str(customer.pk), reason="bench", by=analyst
        )
    if not FraudModelVersion.objects.filter(live=True).exists():
        print("  set-up: training a fraud model on a small simulation", flush=True)
        simulation = SimulationSettings(seed=11, weeks=4, customers=150)
        version = train_model_version(simulate(simulation), source="bench/payments.py", seed=5)
        promote_model_version(version, by=SYSTEM)


def start_gunicorn(threads: int, engine: bool = True) -> subprocess.Popen[bytes]:
    """Two gunicorn workers; with ``threads`` > 1 each is a gthread worker, so one
    request's database waits (commits) overlap another's Python work."""
    env = {
        **os.environ,
        "TILLIT_MODE": "development",
        "DEBUG": "false",
        "FRAUD_ENGINE_ENABLED": "true" if engine else "false",
        # Behind one reverse proxy, as deployed (docs/deploy.md): the client's address is
        # the one the proxy appends to X-Forwarded-For (here, the load generator).
        "AXES_PROXY_COUNT": "1",
    }
    # WhiteNoise serves only what collectstatic gathered (as `scripts/run` does first).
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    kind = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []
    process = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi:application",
            "--workers",
            "2",
            *kind,
            "--bind",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/")
            return process
        except OSError:
            time.sleep(0.1)
    process.terminate()
    sys.exit("gunicorn did not start")


def double_charges(ids: list[int]) -> int:
    from payments.gateways.models import SandboxCharge
    from payments.models import Payment

    captured = Payment.objects.filter(invoice_id__in=ids).captured()
    per_invoice = captured.values_list("invoice_id", flat=True)
    doubles = len(per_invoice) - len(set(per_invoice))
    keys = set(Payment.objects.filter(invoice_id__in=ids).values_list("idempotency_key", flat=True))
    charges = SandboxCharge.objects.filter(idempotency_key__in=keys, outcome="captured").count()
    return doubles + max(0, charges - len(set(per_invoice)))


def bench_camt(refs: list[str], lines: int) -> dict[str, object]:
    from audit import SYSTEM
    from payments.reconciliation.camt054 import sample_camt054
    from payments.reconciliation.services import import_bank_file

    stamp = int(time.time())
    credits = [
        {"amount": "100.00", "reference": refs[i], "ref": f"B{stamp}-{i}"}
        if i < len(refs)
        else {"amount": "10.00", "reference": f"{stamp}{i}", "ref": f"B{stamp}-{i}"}
        for i in range(lines)
    ]
    content = sample_camt054(credits, message_id=f"BENCH-{stamp}")
    print(f"camt.054: {lines} lines, {len(content) / 1e6:.1f} MB", flush=True)
    started = time.perf_counter()
    report = import_bank_file(
        content,
        filename="bench.xml",
        by=SYSTEM,
        progress=lambda d, t: print(f"  imported {d}/{t}", flush=True) if d % 20000 == 0 else None,
    )
    seconds = time.perf_counter() - started
    print(f"camt.054: {seconds:.1f} s ({report.matched} matched, {report.review} to review)")
    return {
        "lines": lines,
        "matched": report.matched,
        "review": report.review,
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="40,80,120,150,160")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per gunicorn worker (1: sync workers)"
    )
    parser.add_argument("--camt-lines", type=int, default=100_000)
    parser.add_argument("--camt-matched", type=int, default=2000)
    parser.add_argument(
        "--only", choices=("cards", "camt"), help="run one part only (default: both)"
    )
    parser.add_argument("--engine", choices=("both", "on", "off"), default="both")
    parser.add_argument(
        "--payers",
        default="1",
        help="paying customers (one card each) per run, comma-separated: 1 is one card and"
        " customer paying every invoice (the fraud engine's worst case); e.g. 1,50",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="how many times each engine mode runs, alternating (the best run counts)",
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    spreads = [int(p) for p in args.payers.split(",")]
    from bench._gauge import python_gauge_ms

    gauge = python_gauge_ms()
    print(f"machine gauge: {gauge} ms for a fixed Python loop (lower is faster)", flush=True)
    setup_django()
    # Alternated (off, on, off, on, ...) so that a drift of the machine's speed during
    # the run weighs on both modes alike; each mode's best run counts.
    modes = {"both": [False, True], "on": [True], "off": [False]}[args.engine] * args.rounds
    per_mode = sum(rates) * args.seconds + WARM_UP
    needed = 0 if args.only == "camt" else per_mode * len(modes)
    print(f"set-up: {needed * len(spreads) + args.camt_matched} invoices", flush=True)
    data = make_data(needed, args.camt_matched, spreads if args.only != "camt" else [1])
    from bench._db import settle_database

    settle_database(_SET_UP_TABLES)
    groups: list[list[tuple[int, int]]] = data["pay_groups"]  # type: ignore[assignment]
    results: list[dict[str, object]] = []
    by_engine: dict[tuple[int, str], list[dict[str, object]]] = {}
    doubles = 0
    if args.only != "camt":
        for payers, ids in zip(spreads, groups, strict=True):
            for n, engine in enumerate(modes):
                runs: list[dict[str, object]] = []
                batch = ids[n * per_mode : (n + 1) * per_mode]
                mode = "on" if engine else "off"
                print(f"{payers} payer(s), fraud engine {mode}:", flush=True)
                doubles += run_cards(data, batch, rates, args.seconds, args.threads, runs, engine)
                by_engine.setdefault((payers, mode), []).extend(runs)
                results += [{**run, "engine": mode, "payers": payers} for run in runs]
    engine_figures: dict[str, object] = {}
    for payers in spreads:
        best = {
            mode: max(float(str(run["throughput_per_s"])) for run in by_engine[(payers, mode)])
            for mode in ("off", "on")
            if (payers, mode) in by_engine
        }
        # The server's CPU per payment (workers and their database connections), each
        # mode's lowest: it moves less with the machine's other load than throughput does.
        cpu = {
            mode: min(float(str(run["server_cpu_ms_per_payment"])) for run in runs)
            for (group, mode), runs in by_engine.items()
            if group == payers
        }
        figures: dict[str, object] = {"best_throughput_per_s": best, "server_cpu_ms": cpu}
        if len(best) == 2 and best["off"]:
            drop = 1 - best["on"] / best["off"]
            extra = cpu["on"] / cpu["off"] - 1
            figures |= {
                "drop": round(drop, 3),
                "engine_drop_ok": drop <= 0.15,
                "server_cpu_extra": round(extra, 3),
            }
            print(
                f"fraud engine, {payers} payer(s): best {best['on']}/s on, {best['off']}/s off:"
                f" drop {drop:.1%}; server CPU a payment {cpu['on']} ms on, {cpu['off']} ms"
                f" off: {extra:+.1%}"
            )
        engine_figures[f"payers_{payers}"] = figures
    camt: dict[str, object] = {}
    if args.only != "cards":
        camt = bench_camt(list(data["camt_refs"]), args.camt_lines)  # type: ignore[call-overload]
    print(
        json.dumps(
            {
                "python_gauge_ms": gauge,
                "workers": 2,
                "threads_per_worker": args.threads,
                "payments": results,
                "double_charges": doubles,
                "fraud_engine": engine_figures,
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "camt054": camt,
            }
        )
    )


def run_cards(
    data: dict[str, object],
    ids: list[tuple[int, int]],
    rates: list[int],
    seconds: int,
    threads: int,
    results: list[dict[str, object]],
    engine: bool = True,
) -> int:
    """Part 1: every rate in turn; the number of double charges found afterwards."""
    server = start_gunicorn(threads, engine)
    payers: list[dict[str, Any]] = data["payers"]  # type: ignore[assignment]
    try:
        used = sorted({payer for payer, _invoice in ids})
        sessions: dict[int, Session] = {
            n: Session(str(payers[n]["username"]), str(payers[n]["address"])) for n in used
        }
        cpu = ServerCpu(server.pid)  # the workers and their database connections
        # Warm-up, not counted: each fresh worker's first card payment imports and loads
        # what a long-running worker holds already (with the engine on: scikit-learn and
        # the live model, about a second of CPU), which would weigh on a run of seconds.
        offset = WARM_UP
        warm = run_rate(
            [sessions.get(n) for n in range(len(payers))],  # type: ignore[misc]
            ids[:WARM_UP],
            [int(payer["card"]) for payer in payers],
            WARM_UP,
        )
        print(f"  warm-up: {WARM_UP} payments, errors {warm['errors']}", flush=True)
        for rate in rates:
            batch = ids[offset : offset + rate * seconds]
            offset += len(batch)
            cpu.start()
            result = run_rate(
                [sessions.get(n) for n in range(len(payers))],  # type: ignore[misc]
                batch,
                [int(payer["card"]) for payer in payers],
                rate,
            )
            done = len(batch) - int(str(result["errors"]))
            result["server_cpu_ms_per_payment"] = round(1000 * cpu.stop() / max(done, 1), 2)
            results.append(result)
            print(
                f"{rate:>4}/s offered: {result['throughput_per_s']}/s done, p50"
                f" {result['p50_ms']} ms, p99 {result['p99_ms']} ms, errors {result['errors']};"
                f" server CPU {result['server_cpu_ms_per_payment']} ms a payment",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    doubles = double_charges([invoice for _payer, invoice in ids])
    print(f"double charges: {doubles}")
    return doubles


if __name__ == "__main__":
    main()
