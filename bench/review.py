"""Benchmark the quarterly security review: a quarter of 1,000,000 audit events, 100,000
invoices and 50,000 payments; generate its review (signed PDF included).

Usage:
    .venv/bin/python bench/review.py [--quick] [--reuse] [--no-fresh] [--scanners]
                                     [--events N] [--invoices N] [--payments N]

DATABASE_URL names the PostgreSQL database (default
postgres://postgres@127.0.0.1:5432/tillit_bench_review). The script DROPS and recreates it
(it refuses a name without "bench"; ``--reuse`` keeps the last run's data when the sizes
are the same), migrates, and then:

1. seeds, in a child process (so its memory is not counted): staff accounts, one invoice
   made by the services and copied to N invoices (INSERT … SELECT), N payments over them,
   and a valid hash chain of N audit events spread over 2026 Q3 (COPY); then runs the daily
   scheduled chain check (``check_audit_chain``), as it would have run after the quarter's
   end, and reports its time: it is what the daily verifier costs;
2. in this process, generates the review of 2026 Q3 (``generate_review``), which states
   that check as its verification of record (decision 76), timed phase by phase (wall and
   this process's CPU time), with every SQL statement it sends captured (those of the
   payments section too, which runs on a second connection meanwhile: decision 77; its
   thread's time is reported apart), then measures the floor: each captured SELECT run
   again under ``EXPLAIN (ANALYZE)``, one after the other, summing PostgreSQL's planning
   and execution times;
3. (unless ``--no-fresh``) generates it again 27 hours later (time moved, no check since):
   the review verifies the whole chain itself; its floor adds the verification's one
   streaming query (its rows are hashed in Python meanwhile);
4. reports each run's time against its floor and where the time went, and this process's
   peak memory (ru_maxrss, over both runs).

``--quick`` is a smoke run (50,000 events, 5,000 invoices, 2,500 payments). The scanners
(bandit, pip-audit) are external tools whose time does not depend on the data; they run
only with --scanners, reported apart. Progress and the figures go to stderr; the last line
of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tillit_bench_review"
QUARTER = (dt.date(2026, 7, 1), dt.date(2026, 9, 30))
GOAL_RATIO, GOAL_SECONDS, GOAL_MEMORY_MB = 1.5, 60.0, 1024
# What a quarter's audit log holds, roughly: actions and their share per 1,000 events.
MIX = (
    ("auth.login", 300),
    ("auth.login_failed", 40),
    ("security.lockout", 2),
    ("invoice.finalized", 150),
    ("invoice.delivery_queued", 150),
    ("payment.started", 100),
    ("vault.card_revealed", 100),
    ("invoice.payment_recorded", 90),
    ("payment.succeeded", 60),
    ("payment.blocked", 5),
    ("security.roles_changed", 1),
    ("vault.dek_rotated", 2),
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup_django(var_dir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("TILLIT_VAR_DIR", str(var_dir))
    import django

    django.setup()


# --- seeding (child process) -----------------------------------------------------------


def _staff() -> None:
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from security.models import User
    from security.roles import STAFF_ROLES

    for n in range(60):
        role = STAFF_ROLES[n % len(STAFF_ROLES)]
        user = User.objects.create_user(
            username=f"staff{n:02d}",
            email=f"staff{n:02d}@example.test",
            is_staff=True,
            last_login=dt.datetime(2026, 9, 1, tzinfo=dt.UTC) if n % 7 else None,
        )
        user.groups.add(Group.objects.get(name=role))
        if n % 5:
            TOTPDevice.objects.create(user=user, name="bench", confirmed=True)


def _template_invoice() -> Any:
    """One finalized invoice, made by the services (the copies keep its valid columns)."""
    from decimal import Decimal

    from audit import SYSTEM
    from billing import services as billing
    from billing.models import InvoiceSeries

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
    customer = billing.create_customer(by=SYSTEM, name="Bench customer", email="ap@bench.example")
    line = {
        "description": "Service",
        "quantity": Decimal(1),
        "unit_price": Decimal(80),
        "vat_category": "S",
        "vat_rate": 25,
    }
    draft = billing.create_draft_invoice(customer=customer, by=SYSTEM, lines=[line])
    return billing.finalize_invoice(draft, by=SYSTEM)


def _copy_rows(table: str, count: int, overrides: dict[str, str], template_id: int) -> None:
    """``count`` copies of one row made by the services, with some columns computed from
    ``g`` (1..count): the other columns (constraints, defaults) stay valid by construction."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " AND column_name <> 'id' ORDER BY ordinal_position",
            [table],
        )
        columns = [row[0] for row in cursor.fetchall()]
        select = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select}"
            f" FROM {table} t, generate_series(1, %s) AS g WHERE t.id = %s",
            [count, template_id],
        )


def _chain(events: int, start: dt.datetime, end: dt.datetime) -> None:
    from django.db import connection

    from audit.chain import event_hash
    from audit.models import AuditEvent

    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = head if head else (0, "0" * 64)
    step = (end - start) / (events + 1)
    moment = start
    weights = [(action, share) for action, share in MIX]
    cycle = [action for action, share in weights for _ in range(share)]
    columns = (
        "seq, created_at, actor_type, actor_id, actor_label, action, object_type, object_id, "
        "ip, user_agent, details, prev_hash, hash"
    )
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy,
    ):
        for n in range(events):
            seq += 1
            moment += step
            action = cycle[(n * 7919) % len(cycle)]
            fields = {
                "seq": seq,
                "created_at": moment,
                "actor_type": "user",
                "actor_id": str(seq % 60),
                "actor_label": f"staff{seq % 60:02d}",
                "action": action,
                "object_type": "billing.invoice",
                "object_id": str(seq % 100_000),
                "ip": f"198.51.100.{seq % 200}",
                "user_agent": "Mozilla/5.0 (bench)",
                "details": {"n": seq},
                "prev_hash": prev_hash,
            }
            prev_hash = event_hash(fields)
            copy.write_row(
                (
                    *(fields[k] for k in list(fields)[:10]),
                    json.dumps(fields["details"]),
                    fields["prev_hash"],
                    prev_hash,
                )
            )
            if seq % 200_000 == 0:
                say(f"  … {seq:,} events")


def seed(events: int, invoices: int, payments: int) -> None:
    """Everything the review reads, for 2026 Q3."""
    import time_machine
    from django.db import connection

    from audit import SYSTEM
    from audit.services import create_checkpoint
    from bench._db import settle_database
    from payments.models import Payment, PaymentMethod
    from payments.vault.models import CardSecret, DataKey

    start = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    end = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    with time_machine.travel(dt.datetime(2026, 6, 20, tzinfo=dt.UTC), tick=False):
        _staff()
        invoice = _template_invoice()
        DataKey.objects.create(id=7, kek_version=1, wrapped_key=b"bench")  # only counted
        card = PaymentMethod.objects.create(
            customer_id=invoice.customer_id,
            token="tok_bench",  # noqa: S106 - a bench row, not a secret
            brand="visa",
            last4="4242",
            exp_month=12,
            exp_year=2039,
            fingerprint="f" * 64,
        )
        CardSecret.objects.create(token=card.token, data_key_id=7, ciphertext=b"x")
        template = Payment.objects.create(
            invoice=invoice,
            amount=10_000,
            currency="SEK",
            method="card",
            payment_method=card,
            status="succeeded",
            idempotency_key="bench_template",
            risk_decision="allow",
        )
    say(f"  {invoices:,} invoices")
    _copy_rows(
        "billing_invoice",
        invoices - 1,
        {
            "number": "t.number + g",
            "ocr_reference": "'B' || g::text",
        },
        invoice.pk,
    )
    say(f"  {payments:,} payments")
    quarter_seconds = int((end - start).total_seconds())
    _copy_rows(
        "payments_payment",
        payments - 1,
        {
            "idempotency_key": "'bench_' || g::text",
            "invoice_id": f"(SELECT min(id) FROM billing_invoice) + (g %% {invoices})",
            "created_at": f"'{start.isoformat()}'::timestamptz"
            f" + (g::bigint * {quarter_seconds} / {payments}) * interval '1 second'",
            "status": "CASE WHEN g %% 10 < 8 THEN 'succeeded' ELSE 'failed' END",
            "failure_code": "CASE WHEN g %% 10 = 9 THEN 'risk_blocked' WHEN g %% 10 = 8"
            " THEN 'card_declined' ELSE '' END",
            "risk_decision": "CASE WHEN g %% 10 = 9 THEN 'block' WHEN g %% 25 = 0 THEN 'review'"
            " ELSE 'allow' END",
        },
        template.pk,
    )
    say(f"  {events:,} audit events over the quarter (COPY, hashed)")
    _chain(events, start, end)
    with time_machine.travel(end - dt.timedelta(hours=1), tick=False):
        create_checkpoint(by=SYSTEM)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('payments_payment', 'id'),"
            " (SELECT max(id) FROM payments_payment))"
        )
    settle_database(("audit_auditevent", "billing_invoice", "payments_payment", "security_user"))


# --- measuring (this process) ------------------------------------------------------------


def scheduled_check() -> dict[str, Any]:
    """The daily scheduled chain check (``audit.incidents``), as it would have run after the
    quarter's end: it leaves the verification of record that the review states. Timed (it
    is what the daily verifier costs), not part of the review's figures."""
    from audit import SYSTEM
    from audit.incidents.detectors import check_audit_chain

    started, cpu_started = time.perf_counter(), time.process_time()
    result = check_audit_chain(by=SYSTEM, source="schedule")
    assert result.ok, result.first_problem
    return {
        "events": result.events,
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time() - cpu_started, 2),
    }


def explain_floor(statements: list[str], *, stream: bool) -> tuple[float, float, int]:
    """PostgreSQL's own planning + execution seconds: the SELECTs the generation sent,
    summed, and (``stream``) the chain verification's streaming query, whose rows are
    hashed in Python meanwhile."""
    from django.db import connection

    from audit.verify import _STREAM_SQL

    def explained(sql: str) -> float:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return float(plan[0]["Planning Time"] + plan[0]["Execution Time"]) / 1000

    selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    sections = sum(explained(sql) for sql in selects)
    return sections, explained(_STREAM_SQL) if stream else 0.0, len(selects)


# Each phase of the generation, timed (wall and this process's CPU) around the function
# that does it: module attribute -> phase name.
PHASES = (
    ("audit.reviews.services", "_chain_verification", "chain_verification"),
    ("audit.reviews.document", "render_review_html", "pdf_html_and_charts"),
    ("billing.documents.render", "html_to_pdf", "pdf_weasyprint"),
    ("billing.documents.sign", "sign_pdf", "pdf_signature"),
)


def generate_measured(*, later: dt.timedelta | None = None) -> dict[str, Any]:
    """Generate the review of the quarter (``later``: that much after now, so that no
    verification of record is recent enough and the review verifies the chain itself),
    timed by phase; then its floor."""
    import importlib

    import time_machine
    from django.db import connection, connections
    from django.db.backends.signals import connection_created
    from django.test.utils import CaptureQueriesContext

    from audit import SYSTEM
    from audit.reviews import selectors, services

    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    originals = []
    # The payments section runs on a second connection (``compute_sections``): its
    # statements count in the floor too, and its thread's own time is reported apart.
    others: list[Any] = []
    main_connection = connections["default"]

    def capture_other(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection is not main_connection:
            connection.force_debug_cursor = True
            others.append(connection)

    payments_thread: dict[str, float] = {}
    payments_section = selectors.payments_and_fraud

    def timed_payments(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            return payments_section(start, end)
        finally:
            payments_thread["seconds"] = time.perf_counter() - started
            payments_thread["cpu_seconds"] = time.thread_time() - cpu_started

    for module_name, attribute, phase in PHASES:
        module = importlib.import_module(module_name)
        function = getattr(module, attribute)
        originals.append((module, attribute, function))

        def run(*args: Any, _f: Any = function, _phase: str = phase, **kwargs: Any) -> Any:
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return _f(*args, **kwargs)
            finally:
                wall[_phase] = wall.get(_phase, 0.0) + time.perf_counter() - started
                cpu[_phase] = cpu.get(_phase, 0.0) + time.process_time() - cpu_started

        setattr(module, attribute, run)
    moment = None
    if later is not None:
        from audit.selectors import last_chain_verification

        # After the last verification (a --reuse run's data may hold one from an earlier
        # run's own "later"), so that none is recent enough to be stated.
        last = last_chain_verification()
        base = dt.datetime.now(dt.UTC)
        if last is not None and last.finished_at is not None:
            base = max(base, last.finished_at)
        moment = time_machine.travel(base + later, tick=True)
    try:
        if moment is not None:
            moment.start()
        started, cpu_started = time.perf_counter(), time.process_time()
        connection_created.connect(capture_other)
        selectors.payments_and_fraud = timed_payments
        with CaptureQueriesContext(connection) as captured:
            review = services.generate_review(
                period_start=QUARTER[0], period_end=QUARTER[1], by=SYSTEM, scanners=False
            )
        total = time.perf_counter() - started
        total_cpu = time.process_time() - cpu_started
    finally:
        selectors.payments_and_fraud = payments_section
        connection_created.disconnect(capture_other)
        if moment is not None:
            moment.stop()
        for module, attribute, function in originals:
            setattr(module, attribute, function)
    verification = review.sections["integrity"]["verification"]
    assert verification["of_record"] is (later is None), "the run is not the case it names"
    statements = [q["sql"] for q in captured.captured_queries]
    statements += [q["sql"] for other in others for q in other.queries]
    sections_floor, stream_floor, counted = explain_floor(
        statements, stream=not verification["of_record"]
    )
    floor = sections_floor + stream_floor
    pdf_wall = sum(
        wall.get(p, 0.0) for p in ("pdf_html_and_charts", "pdf_weasyprint", "pdf_signature")
    )
    pdf_cpu = sum(
        cpu.get(p, 0.0) for p in ("pdf_html_and_charts", "pdf_weasyprint", "pdf_signature")
    )
    rest = total - wall.get("chain_verification", 0.0) - pdf_wall
    rest_cpu = total_cpu - cpu.get("chain_verification", 0.0) - pdf_cpu
    phases = {
        name: {
            "seconds": round(wall.get(name, 0.0), 2),
            "cpu_seconds": round(cpu.get(name, 0.0), 2),
        }
        for _m, _a, name in PHASES
    }
    phases["sections_and_saving"] = {"seconds": round(rest, 2), "cpu_seconds": round(rest_cpu, 2)}
    # Within the sections: the payments section in its own thread, meanwhile.
    phases["payments_section_apart"] = {
        "seconds": round(payments_thread.get("seconds", 0.0), 2),
        "cpu_seconds": round(payments_thread.get("cpu_seconds", 0.0), 2),
    }
    return {
        "verification": "of record" if verification["of_record"] else "run by the review",
        "verification_id": verification["id"],
        "events": verification["events"],
        "seconds": round(total, 2),
        "cpu_seconds": round(total_cpu, 2),
        "floor_seconds": round(floor, 2),
        "floor_statements": counted,
        "floor_sections_seconds": round(sections_floor, 2),
        "floor_chain_stream_seconds": round(stream_floor, 2),
        "ratio_to_floor": round(total / floor, 2) if floor else None,
        "phases": phases,
        "statements": len(statements),
        "pdf_bytes": len(bytes(review.pdf)),
        "payments": review.sections["payments"]["payments"],
    }


def describe(name: str, run: dict[str, Any]) -> None:
    say(
        f"   {name}: {run['seconds']} s in all ({run['cpu_seconds']} s CPU here); floor"
        f" {run['floor_seconds']} s ({run['floor_statements']} statements"
        f" {run['floor_sections_seconds']} s + chain stream {run['floor_chain_stream_seconds']} s):"
        f" {run['ratio_to_floor']}x the floor"
    )
    for phase, figures in run["phases"].items():
        say(f"     {phase:<22} {figures['seconds']:>7.2f} s  ({figures['cpu_seconds']:.2f} s CPU)")


def measure(scanners: bool, fresh: bool) -> dict[str, Any]:
    from audit.reviews import checks

    figures: dict[str, Any] = {}
    say("2. The review of 2026 Q3 with the verification of record (the daily check's)")
    figures["with_verification_of_record"] = run = generate_measured()
    describe("with the verification of record", run)
    if fresh:
        say("3. The same review 27 h later, no check since: the review verifies the chain")
        figures["verifying_itself"] = run = generate_measured(later=dt.timedelta(hours=27))
        describe("verifying the chain itself", run)
    if scanners:
        started = time.perf_counter()
        checks.technical_checks(scanners=True)
        figures["scanner_seconds"] = round(time.perf_counter() - started, 1)
    figures["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--payments", type=int, default=50_000)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 50,000 events, 5,000 invoices, 2,500 payments",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the last run's data if of the same sizes (only the daily check runs again)",
    )
    parser.add_argument(
        "--no-fresh", action="store_true", help="skip the run where the review verifies the chain"
    )
    parser.add_argument("--scanners", action="store_true", help="also time bandit and pip-audit")
    parser.add_argument("--child", choices=["seed", "check"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.events, args.invoices, args.payments = 50_000, 5_000, 2_500
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    os.environ["DATABASE_URL"] = url
    var_dir = ROOT / "var" / "bench-review"
    var_dir.mkdir(parents=True, exist_ok=True)
    if args.child:
        setup_django(var_dir)
        if args.child == "seed":
            seed(args.events, args.invoices, args.payments)
        print(json.dumps(scheduled_check()))
        return
    sizes = f"{args.events} {args.invoices} {args.payments}"
    marker = var_dir / "seeded"
    reuse = args.reuse and marker.exists() and marker.read_text() == f"{url} {sizes}"
    if not reuse:
        say(f"Database {url} (dropped and recreated)")
        marker.unlink(missing_ok=True)
        from bench._db import recreate_database

        recreate_database(url)
    setup_django(var_dir)
    from django.core.management import call_command

    if not reuse:
        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
    say(
        f"1. {'Reusing' if reuse else 'Seeding'} (child process): {args.events:,} events,"
        f" {args.invoices:,} invoices, {args.payments:,} payments; then the daily chain check"
    )
    started = time.perf_counter()
    child = subprocess.run(  # noqa: S603 - this script, its own arguments
        [
            sys.executable,
            __file__,
            "--child",
            "check" if reuse else "seed",
            "--events",
            str(args.events),
            "--invoices",
            str(args.invoices),
            "--payments",
            str(args.payments),
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    marker.write_text(f"{url} {sizes}")
    check = json.loads(child.stdout.strip().splitlines()[-1])
    say(
        f"   done in {time.perf_counter() - started:.0f} s; the daily check verified"
        f" {check['events']:,} events in {check['seconds']} s ({check['cpu_seconds']} s CPU)"
    )
    figures: dict[str, Any] = {
        "sizes": {"events": args.events, "invoices": args.invoices, "payments": args.payments}
    }
    figures["daily_chain_check"] = check
    figures.update(measure(args.scanners, fresh=not args.no_fresh))
    figures["load_average"] = [round(x, 1) for x in os.getloadavg()]
    figures["goals"] = {
        "ratio_to_floor": GOAL_RATIO,
        "seconds": GOAL_SECONDS,
        "peak_memory_mb": GOAL_MEMORY_MB,
    }
    say(f"   peak memory {figures['peak_memory_mb']} MB; load average {figures['load_average']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
