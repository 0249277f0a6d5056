"""verify_audit names the first broken event: edits, deletions, forged checkpoints."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from audit import SYSTEM, record
from audit.models import AuditCheckpoint
from audit.services import create_checkpoint
from audit.verify import (
    BAD_SIGNATURE,
    BROKEN_LINK,
    CHECKPOINT_MISMATCH,
    GAP,
    HASH_MISMATCH,
    UNTRUSTED_KEY,
    verify_chain,
)

pytestmark = pytest.mark.django_db


@contextmanager
def behind_the_triggers_back() -> Iterator[None]:
    """What an attacker with the database superuser could do (rolled back with the test)."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cursor.execute(
            "ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER audit_auditcheckpoint_append_only"
        )
        yield
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")
        cursor.execute(
            "ALTER TABLE audit_auditcheckpoint ENABLE TRIGGER audit_auditcheckpoint_append_only"
        )


def _chain(length: int) -> None:
    for index in range(length):
        record("demo.step", actor=SYSTEM, index=index)


def _verify_audit(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_audit", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_an_intact_log_verifies_with_counts() -> None:
    _chain(5)
    create_checkpoint(by=SYSTEM)

    assert _verify_audit().startswith("OK: 6 events (#1…#6), 1 checkpoints verified")


def test_an_empty_log_verifies() -> None:
    assert _verify_audit().startswith("OK: 0 events")


@pytest.mark.postgres_only
def test_an_edited_event_is_named_exactly() -> None:
    _chain(10)
    with behind_the_triggers_back(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET details = '{\"index\": 99}' WHERE seq = 7")

    result = verify_chain()

    assert result.first_problem is not None
    assert (result.first_problem.seq, result.first_problem.kind) == (7, HASH_MISMATCH)
    assert [p.seq for p in result.problems] == [7]
    with pytest.raises(CommandError, match=r"first broken event #7: hash mismatch"):
        _verify_audit()


@pytest.mark.postgres_only
def test_an_edit_with_a_recomputed_hash_breaks_the_next_link() -> None:
    _chain(10)
    with behind_the_triggers_back(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET hash = repeat('a', 64) WHERE seq = 4")

    result = verify_chain()

    assert [(p.seq, p.kind) for p in result.problems] == [(4, HASH_MISMATCH), (5, BROKEN_LINK)]


@pytest.mark.postgres_only
def test_a_deleted_event_is_reported_as_a_gap() -> None:
    _chain(10)
    with behind_the_triggers_back(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 5")

    result = verify_chain()

    assert result.first_problem is not None
    assert (result.first_problem.seq, result.first_problem.kind) == (5, GAP)
    with pytest.raises(CommandError, match=r"first broken event #5: gap: #5 missing"):
        _verify_audit()


@pytest.mark.postgres_only
def test_events_deleted_from_the_end_are_caught_by_the_checkpoint() -> None:
    _chain(6)
    create_checkpoint(by=SYSTEM)  # signs #6, records #7
    with behind_the_triggers_back(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq >= 6")

    result = verify_chain()

    assert result.first_problem is not None
    assert (result.first_problem.seq, result.first_problem.kind) == (6, GAP)


def test_a_forged_checkpoint_signature_is_reported() -> None:
    _chain(3)
    real = create_checkpoint(by=SYSTEM)
    assert real is not None
    _chain(2)
    head_seq = real.seq + 3
    forged_signature = "00" * 64
    AuditCheckpoint.objects.create(
        seq=head_seq,
        head_hash=record("demo.step", actor=SYSTEM).prev_hash,
        created_at=real.created_at,
        key_id=real.key_id,
        public_key=real.public_key,
        signature=forged_signature,
    )

    result = verify_chain()

    assert [(p.seq, p.kind) for p in result.problems] == [(head_seq, BAD_SIGNATURE)]
    with pytest.raises(CommandError, match=rf"#{head_seq}: bad signature"):
        _verify_audit()


def test_a_checkpoint_by_a_key_that_is_not_trusted_is_reported_until_listed(
    audit_key_file: Path, settings: SettingsWrapper
) -> None:
    _chain(2)
    old = create_checkpoint(by=SYSTEM)
    assert old is not None
    audit_key_file.unlink()  # rotation: a new key signs from now on
    call_command("init_audit_key", stdout=io.StringIO())

    result = verify_chain()
    assert [(p.seq, p.kind) for p in result.problems] == [(old.seq, UNTRUSTED_KEY)]

    settings.AUDIT_TRUSTED_PUBLIC_KEYS = [old.public_key]
    assert verify_chain().ok


@pytest.mark.postgres_only
def test_a_checkpoint_that_disagrees_with_the_chain_is_reported() -> None:
    _chain(4)
    checkpoint = create_checkpoint(by=SYSTEM)
    assert checkpoint is not None
    with behind_the_triggers_back(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditcheckpoint SET head_hash = repeat('b', 64) WHERE id = %s",
            [checkpoint.pk],
        )

    kinds = {(p.seq, p.kind) for p in verify_chain().problems}

    assert (4, CHECKPOINT_MISMATCH) in kinds
    assert (4, BAD_SIGNATURE) in kinds


def test_an_exported_checkpoint_file_is_checked(tmp_path: Path) -> None:
    _chain(3)
    export = tmp_path / "checkpoint.json"
    call_command("audit_checkpoint", export=export, stdout=io.StringIO())
    assert "the exported checkpoint verified" in _verify_audit("--checkpoint-file", str(export))

    document = json.loads(export.read_text())
    document["hash"] = "c" * 64
    export.write_text(json.dumps(document))

    with pytest.raises(CommandError, match="#3: bad signature"):
        _verify_audit("--checkpoint-file", str(export))


def test_a_malformed_checkpoint_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")

    with pytest.raises(CommandError, match=r"--checkpoint-file: .*format"):
        _verify_audit("--checkpoint-file", str(bad))


def test_progress_is_reported_on_long_chains() -> None:
    _chain(5)
    err = io.StringIO()
    call_command("verify_audit", "--progress-every", "2", stdout=io.StringIO(), stderr=err)

    assert err.getvalue().splitlines() == ["… 2 events verified", "… 4 events verified"]
