"""Benchmark: what waiting for a commit's WAL flush costs on this database, per commit.

Usage::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench_flush \
        .venv/bin/python bench/commit_flush.py
    # options: --commits 2000 --rounds 5

A card payment's settle commits with its WAL flush since issue 20 (docs/decisions.md, 28);
before, it set ``synchronous_commit = off`` for itself. This times the same small
transaction — an UPDATE of one row, as a settle writes a payment's status — committed
both ways, alternating in rounds on one connection: the difference is the time a sync
worker waits for the disk per payment. It is a wait, not CPU: under ``bench/payments.py``
it shows as latency and, with sync workers, as a worker held. Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _connect(url: str) -> Any:
    import environ
    import psycopg

    config = environ.Env.db_url_config(url)
    conninfo = psycopg.conninfo.make_conninfo(
        host=str(config.get("HOST") or "127.0.0.1"),
        port=str(config.get("PORT") or 5432),
        user=str(config.get("USER") or "postgres"),
        dbname=str(config["NAME"]),
        **({"password": str(config["PASSWORD"])} if config.get("PASSWORD") else {}),
    )
    return psycopg.connect(conninfo)


def time_commits(conn: Any, commits: int, synchronous: str) -> list[float]:
    """Milliseconds per commit of ``commits`` one-row UPDATE transactions."""
    spent = []
    with conn.cursor() as cursor:
        for n in range(commits):
            started = time.perf_counter()
            cursor.execute("SELECT set_config('synchronous_commit', %s, true)", [synchronous])
            cursor.execute("UPDATE flush_bench SET n = %s WHERE id = 1", [n])
            conn.commit()
            spent.append((time.perf_counter() - started) * 1000)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (a table flush_bench is made in it).")
    from bench._db import ensure_database

    ensure_database(url)
    with _connect(url) as conn:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS flush_bench (id int PRIMARY KEY, n int)")
            cursor.execute("INSERT INTO flush_bench VALUES (1, 0) ON CONFLICT DO NOTHING")
        conn.commit()
        figures: dict[str, list[float]] = {"on": [], "off": []}
        for round_ in range(args.rounds):
            for setting in ("off", "on") if round_ % 2 else ("on", "off"):
                spent = time_commits(conn, args.commits, setting)
                figures[setting].append(statistics.mean(spent))
                p99 = statistics.quantiles(spent, n=100)[98]
                print(
                    f"round {round_ + 1}: synchronous_commit {setting:>3}:"
                    f" {statistics.mean(spent):.3f} ms per commit, p99 {p99:.3f} ms",
                    flush=True,
                )
    on, off = statistics.median(figures["on"]), statistics.median(figures["off"])
    print(f"a commit's WAL flush costs {on - off:.3f} ms (median of {args.rounds} rounds)")
    print(
        json.dumps(
            {
                "commits_per_round": args.commits,
                "rounds": args.rounds,
                "ms_per_commit_flushed": [round(x, 3) for x in figures["on"]],
                "ms_per_commit_not_flushed": [round(x, 3) for x in figures["off"]],
                "flush_cost_ms_median": round(on - off, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
