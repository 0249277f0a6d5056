"""Billing's part of the backup restore test (registered by the documents app): a sample of
signed documents hashes the same after a restore, and the restored signing key opens and
signed the newest one."""

from __future__ import annotations

from typing import Any

from django.db import connection

SAMPLE = 20


def sample_documents(cursor: Any) -> list[dict[str, Any]]:
    """In the dump's snapshot: the SHA-256 of up to SAMPLE signed documents, at random."""
    from billing.documents.models import InvoiceDocument

    cursor.execute(
        f"SELECT id, sha256 FROM {InvoiceDocument._meta.db_table}"  # noqa: S608 - a model's table
        " ORDER BY random() LIMIT %s",
        [SAMPLE],
    )
    return [{"id": row[0], "sha256": row[1]} for row in cursor.fetchall()]


def documents_hash_the_same(sample: list[dict[str, Any]] | None) -> tuple[bool, str]:
    """In the restored database: each sampled document's content hashes as backed up."""
    from billing.documents.models import InvoiceDocument

    bad = []
    with connection.cursor() as cursor:
        for item in sample or []:
            cursor.execute(
                f"SELECT encode(sha256(content), 'hex') FROM {InvoiceDocument._meta.db_table}"  # noqa: S608
                " WHERE id = %s",
                [item["id"]],
            )
            row = cursor.fetchone()
            if row is None or row[0] != item["sha256"]:
                bad.append(str(item["id"]))
    if bad:
        return False, f"documents {', '.join(bad)} differ"
    return True, f"{len(sample or [])} sampled"


def signing_key_opens(_: Any) -> tuple[bool, str]:
    """The restored signing key opens and is the one that signed the newest document."""
    from billing.documents.exceptions import DocumentError
    from billing.documents.keys import load_identity
    from billing.documents.models import InvoiceDocument

    newest = InvoiceDocument.objects.order_by("-created_at", "-pk").only("signer_fingerprint")
    newest_document = newest.first()
    if newest_document is None:
        return True, "no documents yet"
    try:
        identity = load_identity()
    except (DocumentError, OSError) as exc:
        return False, str(exc)
    if identity.fingerprint != newest_document.signer_fingerprint:
        return False, "did not sign the newest document"
    return True, "opens; signed the newest document"


def register() -> None:
    from audit.backups.probes import register_probe

    register_probe("documents' hashes", snapshot=sample_documents, check=documents_hash_the_same)
    register_probe("signing key", check=signing_key_opens)
