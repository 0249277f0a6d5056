"""The checks of a restored database, run inside it (``manage.py verify_restored_backup``).

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


def documents(manifest: dict[str, Any]) -> dict[str, Any]:
    """A sample of signed documents hash as they did when backed up."""
    from billing.documents.models import InvoiceDocument

    sample = manifest["documents"]
    bad = []
    with connection.cursor() as cursor:
        for item in sample:
            cursor.execute(
                f"SELECT encode(sha256(content), 'hex') FROM {InvoiceDocument._meta.db_table}"  # noqa: S608
                " WHERE id = %s",
                [item["id"]],
            )
            row = cursor.fetchone()
            if row is None or row[0] != item["sha256"]:
                bad.append(str(item["id"]))
    detail = f"documents {', '.join(bad)} differ" if bad else f"{len(sample)} sampled"
    return _check("documents' hashes", not bad, detail)


def signing_key() -> dict[str, Any]:
    """The restored signing key opens and is the one that signed the newest document."""
    from billing.documents.exceptions import DocumentError
    from billing.documents.keys import load_identity
    from billing.documents.models import InvoiceDocument

    newest = InvoiceDocument.objects.order_by("-created_at", "-pk").only("signer_fingerprint")
    newest_document = newest.first()
    if newest_document is None:
        return _check("signing key", True, "no documents yet")
    try:
        identity = load_identity()
    except (DocumentError, OSError) as exc:
        return _check("signing key", False, str(exc))
    same = identity.fingerprint == newest_document.signer_fingerprint
    return _check(
        "signing key",
        same,
        "opens; signed the newest document"
        if same
        else "opens, but did not sign the newest document",
    )


def vault() -> dict[str, Any]:
    """Stored cards decrypt with the restored keyring."""
    from payments.vault.recovery import stored_cards_open

    ok, detail = stored_cards_open()
    return _check("stored cards decrypt", ok, detail)


def run_all(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    checks = [row_counts(manifest), audit_chain(manifest), documents(manifest)]
    checks.append(signing_key())
    checks.append(vault())
    return checks
