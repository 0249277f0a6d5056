"""Signed checkpoints: the key file, the signature, the schedule, the export."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.module_loading import import_string
from django_q.models import Schedule
from pytest_django.fixtures import Settings as SettingsWrapper

from audit import SYSTEM, record
from audit.chain import checkpoint_message
from audit.exceptions import AuditError, AuditKeyError
from audit.keys import key_id_for, signature_is_valid
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import (
    CHECKPOINT_SCHEDULE_NAME,
    create_checkpoint,
    register_checkpoint_schedule,
)
from audit.tasks import create_scheduled_checkpoint
from audit.verify import read_checkpoint_file, verify_chain

pytestmark = pytest.mark.django_db


def test_a_checkpoint_signs_the_head_and_is_itself_recorded(audit_key_file: Path) -> None:
    record("demo.one", actor=SYSTEM)
    head = record("demo.two", actor=SYSTEM)

    checkpoint = create_checkpoint(by=SYSTEM)

    assert checkpoint is not None
    assert (checkpoint.seq, checkpoint.head_hash) == (head.seq, head.hash)
    assert checkpoint.key_id == key_id_for(checkpoint.public_key)
    message = checkpoint_message(
        seq=checkpoint.seq,
        head_hash=checkpoint.head_hash,
        created_at=checkpoint.created_at,
        key_id=checkpoint.key_id,
    )
    assert signature_is_valid(checkpoint.public_key, checkpoint.signature, message)
    event = AuditEvent.objects.get(seq=head.seq + 1)
    assert event.action == "audit.checkpointed"
    assert event.details == {
        "checkpoint_seq": head.seq,
        "head_hash": head.hash,
        "key_id": checkpoint.key_id,
    }
    assert (event.object_type, event.object_id) == ("audit.auditcheckpoint", str(checkpoint.pk))


def test_development_creates_the_key_file_with_mode_0600(audit_key_file: Path) -> None:
    record("demo.one", actor=SYSTEM)
    assert not audit_key_file.exists()

    create_checkpoint(by=SYSTEM)

    assert stat.S_IMODE(audit_key_file.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in audit_key_file.read_bytes()


def test_production_refuses_to_sign_without_an_existing_key_file(
    settings: SettingsWrapper, audit_key_file: Path
) -> None:
    settings.PRODUCTION = True
    record("demo.one", actor=SYSTEM)

    with pytest.raises(AuditKeyError, match="init_audit_key"):
        create_checkpoint(by=SYSTEM)

    assert not audit_key_file.exists()
    assert not AuditCheckpoint.objects.exists()


def test_production_refuses_a_key_file_others_can_read(
    settings: SettingsWrapper, audit_key_file: Path
) -> None:
    call_command("init_audit_key", stdout=io.StringIO())
    audit_key_file.chmod(0o644)
    settings.PRODUCTION = True
    record("demo.one", actor=SYSTEM)

    with pytest.raises(AuditKeyError, match="chmod 600"):
        create_checkpoint(by=SYSTEM)


def test_init_audit_key_never_replaces_a_key(audit_key_file: Path) -> None:
    call_command("init_audit_key", stdout=io.StringIO())
    original = audit_key_file.read_bytes()

    with pytest.raises(CommandError, match="already exists"):
        call_command("init_audit_key")

    assert audit_key_file.read_bytes() == original


def test_an_empty_log_has_no_head_to_sign() -> None:
    with pytest.raises(AuditError, match="empty"):
        create_checkpoint(by=SYSTEM)


def test_the_schedule_skips_when_nothing_happened_since_the_last_checkpoint() -> None:
    record("demo.one", actor=SYSTEM)
    assert create_scheduled_checkpoint() == 1
    assert create_scheduled_checkpoint() is None
    record("demo.two", actor=SYSTEM)
    assert create_scheduled_checkpoint() == 3
    assert AuditCheckpoint.objects.count() == 2


def test_the_checkpoint_schedule_is_registered_once_with_the_configured_interval(
    settings: SettingsWrapper,
) -> None:
    settings.AUDIT_CHECKPOINT_MINUTES = 15
    register_checkpoint_schedule()
    register_checkpoint_schedule()

    schedule = Schedule.objects.get(name=CHECKPOINT_SCHEDULE_NAME)
    assert import_string(schedule.func) is create_scheduled_checkpoint
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        Schedule.MINUTES,
        15,
        -1,
    )


def test_the_command_exports_a_checkpoint_an_auditor_can_check(tmp_path: Path) -> None:
    record("demo.one", actor=SYSTEM)
    export = tmp_path / "checkpoint.json"

    call_command("audit_checkpoint", export=export, stdout=io.StringIO())

    document = json.loads(export.read_text())
    checkpoint = AuditCheckpoint.objects.get()
    assert document["seq"] == checkpoint.seq == 1
    assert document["public_key"] == checkpoint.public_key
    assert "PRIVATE" not in export.read_text()
    assert document["signed_message"].encode() == checkpoint_message(
        seq=1,
        head_hash=checkpoint.head_hash,
        created_at=checkpoint.created_at,
        key_id=checkpoint.key_id,
    )
    assert verify_chain(checkpoint_file=read_checkpoint_file(export)).ok


def test_the_command_refuses_to_overwrite_an_export(tmp_path: Path) -> None:
    record("demo.one", actor=SYSTEM)
    export = tmp_path / "checkpoint.json"
    export.write_text("kept")

    with pytest.raises(CommandError, match="already exists"):
        call_command("audit_checkpoint", export=export)

    assert export.read_text() == "kept"
    assert not AuditCheckpoint.objects.exists()
