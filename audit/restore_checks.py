"""The checks of a restored database, run inside it (``manage.py verify_restored_backup``).

Beside ``audit.backups`` rather than in it: these read the chain (``audit.verify``),
which the backups package itself never needs.

This process's DATABASE_URL is the restored database and its key settings are the
restored keys: it sees what a recovered installation would see. Each check returns
``{name, ok, detail}``; none prints a secret or a personal value.
"""

from __future__ import annotations

from typing import Any

from django.db import connection


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail[:500]}


def row_counts(manifest: dict[str, Any]) -> dict[str, Any]:
    """Every table holds as many rows as the backup's snapshot counted."""
    expected: dict[str, int] = manifest["row_counts"]
    wrong = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        )
        present = {row[0] for row in cursor.fetchall()}
        for table, count in sorted(expected.items()):
            if table not in present:
                wrong.append(f"{table} missing")
                continue
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            found = cursor.fetchone()[0]
            if found != count:
                wrong.append(f"{table}: {found} rows, expected {count}")
    detail = "; ".join(wrong[:10]) if wrong else f"{len(expected)} tables"
    return _check("row counts per table", not wrong, detail)


def audit_chain(manifest: dict[str, Any]) -> dict[str, Any]:
    """The chain verifies, its checkpoints by trusted (restored) keys, up to the backed-up head."""
    from audit.verify import verify_chain

    result = verify_chain()
    head = manifest["audit_head"]
    if result.first_problem is not None:
        problem = result.first_problem
        return _check("audit chain", False, f"#{problem.seq}: {problem.kind}: {problem.message}")
    if (result.last_seq, result.head_hash if result.last_seq else "") != (
        head["seq"],
        head["hash"],
    ):
        return _check("audit chain", False, f"head #{result.last_seq}, expected #{head['seq']}")
    return _check(
        "audit chain",
        True,
        f"{result.events} events, {result.checkpoints} checkpoints with trusted keys",
    )


def run_all(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Row counts, the audit chain, then each registered probe (audit.backups.probes)."""
    from audit.backups import probes

    checks = [row_counts(manifest), audit_chain(manifest)]
    for probe in probes.probes():
        try:
            ok, detail = probe.check(manifest.get("probes", {}).get(probe.name))
        except Exception as exc:  # a probe that breaks is a failed check, named
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        checks.append(_check(probe.name, ok, detail))
    return checks
