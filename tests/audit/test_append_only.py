"""The event and checkpoint tables refuse UPDATE, DELETE and TRUNCATE (PostgreSQL trigger)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from audit import SYSTEM, record
from audit.models import AuditEvent

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]


def _refused(statement: str) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


def test_an_orm_update_of_an_event_is_refused() -> None:
    event = record("demo.kept", actor=SYSTEM, note="original")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=event.seq).update(details={"note": "forged"})
    assert AuditEvent.objects.get(seq=event.seq).details == {"note": "original"}


def test_saving_a_changed_event_is_refused() -> None:
    event = record("demo.kept", actor=SYSTEM, note="original")
    event.details = {"note": "forged"}
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()
    assert AuditEvent.objects.get(seq=event.seq).details == {"note": "original"}


def test_an_orm_delete_of_an_event_is_refused() -> None:
    event = record("demo.kept", actor=SYSTEM)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=event.seq).delete()
    assert AuditEvent.objects.filter(seq=event.seq).exists()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET action = 'demo.forged'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
        "UPDATE audit_auditcheckpoint SET head_hash = 'x'",
        "DELETE FROM audit_auditcheckpoint",
        "TRUNCATE audit_auditcheckpoint",
    ],
)
def test_raw_sql_cannot_change_or_remove_audit_rows(statement: str) -> None:
    record("demo.kept", actor=SYSTEM)
    _refused(statement)
    assert AuditEvent.objects.filter(action="demo.kept").count() == 1
