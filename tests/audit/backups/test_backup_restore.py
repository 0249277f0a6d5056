"""Backup -> restore gives the same data; a changed byte, a missing key, a full database
are refused. Real pg_dump/pg_restore, real GnuPG, real PostgreSQL databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.backups import postgres
from audit.backups.models import BackupRun
from audit.backups.services import create_backup, restore_backup
from audit.exceptions import BackupError
from billing.documents import keys as document_keys
from billing.documents.services import sign_invoice_document
from payments.vault.cards import Card
from payments.vault.services import tokenize
from security.models import SecurityAlert
from tests.factories import audit_events

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def table_digests(dbname: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and an MD5 over its rows in a fixed order: row by row."""
    digests = {}
    with postgres.connect(dbname) as conn, conn.cursor() as cursor:
        for table in postgres.user_tables(cursor):
            ident = psycopg.sql.Identifier(table)
            cursor.execute(
                psycopg.sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text),"
                    " '')) FROM {} t"
                ).format(ident)
            )
            row = cursor.fetchone()
            assert row is not None
            digests[table] = (row[0], row[1])
    return digests


@pytest.fixture
def some_data(
    backup_settings: Any,
    default_series: None,
    make_open_invoice: Any,
    alice_company: Any,
    alice: Any,
    clerk: Any,
) -> dict[str, Any]:
    """An invoice with its signed PDF, a stored card, a checkpoint, a media file."""
    from audit.services import create_checkpoint

    document_keys.create_key_file(common_name="Tillit Demo AB invoices", organisation="Demo")
    invoice = make_open_invoice(alice_company)
    document = sign_invoice_document(invoice, by=clerk)
    tokenize(
        Card.from_input(number="4111111111111111", expiry="12/39", cvc="737"),
        customer=alice_company,
        by=alice,
    )
    create_checkpoint(by="system")
    logo = Path(backup_settings.MEDIA_ROOT) / "company" / "logo.png"
    logo.parent.mkdir(parents=True)
    logo.write_bytes(b"\x89PNG not really a logo")
    return {"invoice": invoice, "document": document, "logo": logo}


def test_backup_then_restore_gives_identical_data(
    some_data: dict[str, Any], scratch_database: str, tmp_path: Path
) -> None:
    live = postgres.live_database_name()
    before = table_digests(live)

    run = create_backup()

    assert run.status == BackupRun.Status.SUCCEEDED
    folder = Path(run.path)
    assert sorted(p.name for p in folder.iterdir()) == [
        "database.dump.gpg",
        "manifest.json",
        "manifest.sig",
        "media.tar.gpg",
    ]
    assert b"PGDMP" not in (folder / "database.dump.gpg").read_bytes()  # never plaintext
    [event] = audit_events("backup.created", run)
    assert event.details["manifest_sha256"] == run.manifest_sha256

    media = tmp_path / "restored-media"
    restore_backup(folder, database=scratch_database, media_root=media, by="system")

    after = table_digests(scratch_database)
    # The backup's own row was written (running) before the snapshot; nothing else differs.
    assert after.pop("audit_backuprun")[0] == 1
    before.pop("audit_backuprun")
    assert after == before
    assert (media / "company" / "logo.png").read_bytes() == some_data["logo"].read_bytes()
    with postgres.connect(scratch_database) as conn:
        stored = conn.execute(
            "SELECT encode(sha256(content), 'hex') FROM documents_invoicedocument WHERE id = %s",
            [some_data["document"].pk],
        ).fetchone()
    assert stored == (some_data["document"].sha256,)


def test_a_backup_with_one_byte_changed_is_refused(
    backup_settings: Any, scratch_database: str
) -> None:
    run = create_backup()
    dump = Path(run.path) / "database.dump.gpg"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))

    with pytest.raises(BackupError, match=r"database\.dump\.gpg does not match its checksum"):
        restore_backup(Path(run.path), database=scratch_database, by="system")
    assert not postgres.database_exists(scratch_database)


def test_a_changed_manifest_is_refused(backup_settings: Any, scratch_database: str) -> None:
    run = create_backup()
    manifest = Path(run.path) / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"row_counts":{', b'"row_counts":{"x":1,'))

    with pytest.raises(BackupError, match="signature does not match"):
        restore_backup(Path(run.path), database=scratch_database, by="system")
    assert not postgres.database_exists(scratch_database)


def test_a_manifest_signed_by_an_unknown_key_is_refused(
    backup_settings: Any, scratch_database: str, tmp_path: Path
) -> None:
    run = create_backup()
    backup_settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "other" / "audit_ed25519.pem"

    with pytest.raises(BackupError, match="untrusted key"):
        restore_backup(Path(run.path), database=scratch_database, by="system")


def test_no_recipient_key_fails_clearly_and_writes_nothing(backup_settings: Any) -> None:
    backup_settings.BACKUP_GPG_RECIPIENTS = []

    with pytest.raises(BackupError, match="BACKUP_GPG_RECIPIENTS: no recipient key configured"):
        create_backup()

    backup_dir = Path(backup_settings.BACKUP_DIR)
    assert not backup_dir.exists() or not any(backup_dir.rglob("*.gpg"))
    assert not backup_dir.exists() or not any(p.is_file() for p in backup_dir.rglob("*"))
    run = BackupRun.objects.get()
    assert run.status == BackupRun.Status.FAILED
    assert "no recipient key" in run.error
    assert audit_events("backup.failed", run)
    assert SecurityAlert.objects.get(kind="backup.failed").is_open


def test_a_recipient_whose_key_is_missing_fails_naming_it(backup_settings: Any) -> None:
    missing = "0123456789ABCDEF0123456789ABCDEF01234567"
    backup_settings.BACKUP_GPG_RECIPIENTS = [missing]

    with pytest.raises(CommandError, match=f"no usable public key for {missing}"):
        call_command("backup")
    assert not any(p.is_file() for p in Path(backup_settings.BACKUP_DIR).rglob("*"))


def test_restore_refuses_a_database_that_is_not_empty(
    backup_settings: Any, scratch_database: str
) -> None:
    run = create_backup()
    restore_backup(Path(run.path), database=scratch_database, by="system")

    with pytest.raises(BackupError, match="is not empty; pass --replace"):
        restore_backup(Path(run.path), database=scratch_database, by="system")

    restore_backup(Path(run.path), database=scratch_database, replace=True, by="system")
    assert table_digests(scratch_database)["billing_customer"][0] == 0


def test_restore_never_replaces_the_live_database(backup_settings: Any) -> None:
    run = create_backup()
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(Path(run.path), database=postgres.live_database_name(), by="system")
    with pytest.raises(BackupError, match="live database"):
        restore_backup(
            Path(run.path), database=postgres.live_database_name(), replace=True, by="system"
        )
