"""Benchmark the audit log: raw floor, appends (1 and 4 writers), verification.

Usage:
    .venv/bin/python bench/audit.py [--events N] [--verify-events M]

DATABASE_URL names the PostgreSQL database to use (default
postgres://postgres@127.0.0.1:5432/tillit_bench_audit). The script DROPS and
recreates that database, so it refuses a name without "bench" in it; then it
migrates it and measures, in one run:

1. the raw floor: one-row INSERT transactions with plain psycopg into a
   scratch table of the same database (a row about the size of an event);
2. N appends through ``audit.record`` with one writer, then N more with four
   concurrent writers (threads, one connection each), each append in its own
   transaction: events/s and the ratio to the floor;
3. ``verify_chain`` over the 2N events: events/s;
4. unless --verify-events 0: the chain is extended with valid events (COPY)
   to M events in all (default 1,000,000) and verified again, timed.

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tillit_bench_audit"
WRITERS = 4
ROUNDS = 10
GOAL_RATIO = 0.5
GOAL_VERIFY_1M_SECONDS = 20.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def floor_batch(conn: psycopg.Connection[Any], transactions: int) -> float:
    """Seconds for ``transactions`` one-row INSERT transactions with plain psycopg."""
    payload = "x" * 300
    started = time.perf_counter()
    for _ in range(transactions):
        conn.execute("INSERT INTO bench_floor (payload) VALUES (%s)", [payload])
        conn.commit()
    return time.perf_counter() - started


def measure_floor_and_single_writer(url: str, floor_n: int, events: int) -> tuple[float, float]:
    """Floor and one-writer appends in alternating rounds, so background load hits both alike."""
    import psycopg

    rounds = ROUNDS if events >= ROUNDS and floor_n >= ROUNDS else 1
    floor_seconds = append_seconds = 0.0
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, payload text)")
        conn.commit()
        for number in range(rounds):
            floor_seconds += floor_batch(conn, floor_n // rounds)
            started = time.perf_counter()
            append(events // rounds, 0, progress=False)
            append_seconds += time.perf_counter() - started
            done_floor = floor_n // rounds * (number + 1)
            done_events = events // rounds * (number + 1)
            say(
                f"  … round {number + 1}/{rounds}: floor {done_floor / floor_seconds:,.0f} tx/s, "
                f"appends {done_events / append_seconds:,.0f} events/s"
            )
        conn.execute("DROP TABLE bench_floor")
        conn.commit()
    return floor_n // rounds * rounds / floor_seconds, events // rounds * rounds / append_seconds


def append(count: int, writer: int, progress: bool) -> None:
    from django.db import connection

    from audit import SYSTEM, record

    step = max(count // 10, 1)
    try:
        for index in range(count):
            record("bench.appended", actor=SYSTEM, writer=writer, index=index)
            if progress and (index + 1) % step == 0:
                say(f"  … {index + 1:,}/{count:,}")
    finally:
        connection.close()


def measure_appends(events: int, writers: int) -> float:
    share = [events // writers + (1 if n < events % writers else 0) for n in range(writers)]
    threads = [threading.Thread(target=append, args=(share[n], n, n == 0)) for n in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return events / (time.perf_counter() - started)


def measure_verification() -> tuple[int, float, float]:
    """(events, wall seconds, this process's CPU seconds) of one verify_chain."""
    from audit.verify import verify_chain

    started, cpu = time.perf_counter(), time.process_time()
    result = verify_chain(progress=lambda n: say(f"  … {n:,} verified"))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if not result.ok:
        raise SystemExit(f"verification failed: {result.first_problem}")
    return result.events, elapsed, cpu


def extend_chain(total: int) -> None:
    """Append valid events with COPY until the chain holds ``total`` (verification input)."""
    from django.db import connection
    from django.utils import timezone

    from audit.chain import event_hash
    from audit.models import AuditEvent

    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = head if head else (0, "0" * 64)
    moment = timezone.now()
    columns = (
        "seq, created_at, actor_type, actor_id, actor_label, action, object_type, object_id, "
        "ip, user_agent, details, prev_hash, hash"
    )
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
            while seq < total:
                seq += 1
                moment += timedelta(microseconds=1000)
                fields = {
                    "seq": seq,
                    "created_at": moment,
                    "actor_type": "user",
                    "actor_id": str(seq % 50),
                    "actor_label": f"clerk{seq % 50}",
                    "action": "invoice.finalized",
                    "object_type": "billing.invoice",
                    "object_id": str(seq),
                    "ip": "192.0.2.10",
                    "user_agent": "Mozilla/5.0 (bench)",
                    "details": {"number": f"A-{seq}", "total_minor": seq * 100, "currency": "SEK"},
                    "prev_hash": prev_hash,
                }
                prev_hash = event_hash(fields)
                copy.write_row(
                    (
                        *(fields[name] for name in list(fields)[:10]),
                        json.dumps(fields["details"]),
                        fields["prev_hash"],
                        prev_hash,
                    )
                )
                if seq % 100_000 == 0:
                    say(f"  … chain extended to {seq:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="appends per phase")
    parser.add_argument(
        "--floor-transactions",
        type=int,
        default=None,
        help="raw floor transactions (default: min(events, 20000))",
    )
    parser.add_argument(
        "--verify-events",
        type=int,
        default=1_000_000,
        help="extend the chain to this many events and time verification (0: skip)",
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

    say(f"Database {url} (dropped and recreated)")
    from bench._db import recreate_database

    recreate_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    floor_n = args.floor_transactions or min(args.events, 20_000)
    say(
        f"1+2a. Raw floor ({floor_n:,} one-row INSERT transactions, psycopg) and "
        f"{args.events:,} appends through audit.record with 1 writer, "
        f"in {ROUNDS} alternating rounds"
    )
    floor, single = measure_floor_and_single_writer(url, floor_n, args.events)
    say(f"   floor {floor:,.0f} tx/s")
    say(f"   1 writer {single:,.0f} events/s = {single / floor:.0%} of the floor")
    say(f"2b. {args.events:,} appends through audit.record, {WRITERS} concurrent writers")
    multi = measure_appends(args.events, WRITERS)
    say(f"   {multi:,.0f} events/s = {multi / floor:.0%} of the floor")

    say("3. verify_chain over the appended events")
    verified, seconds, cpu = measure_verification()
    verify_rate = verified / seconds
    say(
        f"   {verified:,} events in {seconds:.2f} s = {verify_rate:,.0f} events/s "
        f"({cpu / max(verified, 1) * 1e6:.1f} µs CPU per event in this process)"
    )

    figures: dict[str, object] = {
        "floor_tx_per_s": round(floor),
        "floor_transactions": floor_n,
        "events_per_phase": args.events,
        "single_writer_events_per_s": round(single),
        "single_writer_ratio_to_floor": round(single / floor, 3),
        "four_writers_events_per_s": round(multi),
        "four_writers_ratio_to_floor": round(multi / floor, 3),
        "verify_events": verified,
        "verify_events_per_s": round(verify_rate),
        "verify_cpu_us_per_event": round(cpu / max(verified, 1) * 1e6, 1),
        "load_average_1m_at_end": None,
        "verify_1m_seconds_extrapolated": round(1_000_000 / verify_rate, 1),
        "goal_single_writer_ratio": GOAL_RATIO,
        "goal_verify_1m_seconds": GOAL_VERIFY_1M_SECONDS,
    }
    if args.verify_events > verified:
        say(f"4. Extending the chain to {args.verify_events:,} events (COPY), then verify_chain")
        extend_chain(args.verify_events)
        big, big_seconds, big_cpu = measure_verification()
        say(
            f"   {big:,} events in {big_seconds:.2f} s = {big / big_seconds:,.0f} events/s, "
            f"{big_cpu:.2f} s CPU in this process "
            f"(goal: 1,000,000 in < {GOAL_VERIFY_1M_SECONDS:.0f} s)"
        )
        figures["verify_large_events"] = big
        figures["verify_large_seconds"] = round(big_seconds, 2)
        figures["verify_large_cpu_seconds"] = round(big_cpu, 2)
        figures["verify_large_events_per_s"] = round(big / big_seconds)
    figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
