"""Each detector fires on its condition, and not without it; firing opens an incident with
its evidence (and tells the officers), a tampered audit event included."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import RequestFactory

from audit import SYSTEM, record
from audit.incidents import detectors
from audit.incidents.models import Incident
from audit.services import create_checkpoint
from payments.vault.services.cards import REVEALED_ACTION
from security.services import record_lockout
from tests.factories import audit_events

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 9, 20, 12, 0, tzinfo=dt.UTC)


def lockouts(n: int) -> None:
    for i in range(n):
        record_lockout(username=f"user{i}", request=RequestFactory().post("/account/login/"))


def at(moment: dt.datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def test_a_lockout_spike_opens_one_incident_with_its_lockouts_as_evidence(settings: Any) -> None:
    settings.INCIDENT_LOCKOUT_SPIKE_MIN = 5
    with at(NOW - dt.timedelta(minutes=30)):
        lockouts(5)
    with at(NOW):
        incident = detectors.detect_lockout_spike(NOW)
    assert incident is not None and incident.kind == "account_takeover"
    assert incident.audit_events.count() == 5
    assert {e.action for e in incident.audit_events.all()} == {"security.lockout"}
    (opened,) = audit_events("incident.opened", incident)
    assert opened.details["detector"] == "lockout_spike" and opened.actor_type == "system"


def test_lockouts_below_the_minimum_or_outside_the_hour_open_nothing(settings: Any) -> None:
    settings.INCIDENT_LOCKOUT_SPIKE_MIN = 5
    with at(NOW - dt.timedelta(minutes=90)):
        lockouts(3)
    with at(NOW - dt.timedelta(minutes=10)):
        lockouts(4)
    with at(NOW):
        assert detectors.detect_lockout_spike(NOW) is None
    assert not Incident.objects.exists()


def test_a_steady_rate_is_the_baseline_not_a_spike(settings: Any) -> None:
    """The bar is the minimum or FACTOR times the week's hourly average, whichever is higher."""
    settings.INCIDENT_LOCKOUT_SPIKE_MIN = 5
    for hours_ago in range(48, 1, -1):
        with at(NOW - dt.timedelta(hours=hours_ago, minutes=-5)):
            record("security.lockout", actor=SYSTEM, username="x", minutes=30)
            record("security.lockout", actor=SYSTEM, username="x", minutes=30)
    with at(NOW - dt.timedelta(minutes=20)):
        lockouts(5)
    spike = detectors.measure_spike(["security.lockout"], minimum=5, now=NOW)
    # 94 in the week before: 94 / 168 per hour, x3 = 1.7, so the minimum (5) decides...
    assert spike.threshold == 5 and spike.fired
    settings.INCIDENT_SPIKE_FACTOR = 10  # ...unless the factor lifts the bar above it
    assert not detectors.measure_spike(["security.lockout"], minimum=5, now=NOW).fired


def test_card_reveals_above_baseline_open_a_card_data_incident(settings: Any) -> None:
    settings.INCIDENT_REVEAL_SPIKE_MIN = 3
    with at(NOW - dt.timedelta(minutes=5)):
        for _ in range(2):
            record(REVEALED_ACTION, actor=SYSTEM)
    with at(NOW):
        assert detectors.detect_reveal_spike(NOW) is None
    with at(NOW + dt.timedelta(minutes=1)):
        record(REVEALED_ACTION, actor=SYSTEM)
        incident = detectors.detect_reveal_spike(NOW + dt.timedelta(minutes=2))
    assert incident is not None
    assert (incident.kind, incident.severity) == ("card_data_exposure", "critical")


def test_a_fraud_decline_spike_opens_a_fraud_wave_incident(settings: Any) -> None:
    settings.INCIDENT_FRAUD_DECLINE_SPIKE_MIN = 4
    with at(NOW - dt.timedelta(minutes=5)):
        for action in ("payment.blocked", "payment.blocked", "payment.risk_declined"):
            record(action, actor=SYSTEM)
        record("payment.failed", actor=SYSTEM)  # an ordinary decline is not fraud
    assert detectors.detect_fraud_decline_spike(NOW) is None
    with at(NOW - dt.timedelta(minutes=4)):
        record("payment.blocked", actor=SYSTEM)
    incident = detectors.detect_fraud_decline_spike(NOW)
    assert incident is not None and incident.kind == "fraud_wave"


def test_the_audit_key_nearing_its_cryptoperiod_opens_a_key_incident(settings: Any) -> None:
    settings.GOVERNANCE_AUDIT_KEY_CRYPTOPERIOD_DAYS = 100
    settings.GOVERNANCE_KEY_WARNING_DAYS = 10
    with at(NOW - dt.timedelta(days=80)):
        record("invoice.finalized", actor=SYSTEM)
        create_checkpoint(by=SYSTEM)
    with at(NOW):
        assert not [
            i for i in detectors.detect_keys_near_cryptoperiod(NOW) if "checkpoint" in i.title
        ]
    later = NOW + dt.timedelta(days=11)
    with at(later):
        opened = [
            i for i in detectors.detect_keys_near_cryptoperiod(later) if "checkpoint" in i.title
        ]
    (incident,) = opened
    assert incident.kind == "key_compromise" and "nears the end" in incident.title


def test_the_kek_past_its_cryptoperiod_opens_a_high_severity_incident(settings: Any) -> None:
    from payments.vault.services import rotate_data_key

    settings.GOVERNANCE_KEK_CRYPTOPERIOD_DAYS = 30
    with at(NOW - dt.timedelta(days=31)):
        rotate_data_key(by=SYSTEM)  # the keyring's first KEK wraps its first data key
    with at(NOW):
        opened = [i for i in detectors.detect_keys_near_cryptoperiod(NOW) if "KEK" in i.title]
    (incident,) = opened
    assert incident.severity == "high" and "is past" in incident.title


def test_the_id_token_key_past_its_cryptoperiod_opens_a_key_incident(
    settings: Any, tmp_path: Any
) -> None:
    import os

    from security.oidc_key_files import create_key_file, key_id

    settings.OIDC_KEY_FILE = tmp_path / "oidc_rsa.pem"
    create_key_file(settings.OIDC_KEY_FILE)
    pem = settings.OIDC_KEY_FILE.read_text()
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_RSA_PRIVATE_KEY": pem}
    settings.OIDC_KEY_CRYPTOPERIOD_DAYS = 365
    written = (NOW - dt.timedelta(days=300)).timestamp()
    os.utime(settings.OIDC_KEY_FILE, (written, written))
    with at(NOW):
        assert not [
            i for i in detectors.detect_keys_near_cryptoperiod(NOW) if "ID-token" in i.title
        ]
    written = (NOW - dt.timedelta(days=366)).timestamp()
    os.utime(settings.OIDC_KEY_FILE, (written, written))
    with at(NOW):
        opened = [i for i in detectors.detect_keys_near_cryptoperiod(NOW) if "ID-token" in i.title]
    (incident,) = opened
    assert incident.severity == "high" and "is past" in incident.title
    assert key_id(pem)[:16] in incident.detector_key


def test_a_failed_backup_or_restore_test_opens_a_data_loss_incident() -> None:
    from audit.backups.models import BackupRun, RestoreTest

    BackupRun.objects.create(
        name="ok-1",
        kind="data",
        status="succeeded",
        path="/b/ok-1",
        started_at=NOW - dt.timedelta(hours=3),
    )
    assert detectors.detect_failed_backups(NOW) is None
    BackupRun.objects.create(
        name="nightly-2",
        kind="data",
        status="failed",
        path="/b/n-2",
        started_at=NOW - dt.timedelta(hours=2),
        error="disk full",
    )
    RestoreTest.objects.create(
        backup_name="ok-1", started_at=NOW - dt.timedelta(hours=1), passed=False
    )
    incident = detectors.detect_failed_backups(NOW)
    assert incident is not None and incident.kind == "data_loss"
    assert "backup nightly-2" in incident.summary and "restore test of ok-1" in incident.summary
    assert detectors.detect_failed_backups(NOW + dt.timedelta(days=2)) is None  # a day back


@pytest.mark.postgres_only
def test_a_tampered_audit_event_fails_the_chain_check_and_opens_an_incident() -> None:
    for n in range(3):
        record("invoice.finalized", actor=SYSTEM, number=f"F-{n}")
    assert detectors.check_audit_chain().ok
    assert not Incident.objects.exists()
    victim = audit_events("invoice.finalized")[1]
    with connection.cursor() as cursor:  # what an intruder with database access would do
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            'UPDATE audit_auditevent SET details = \'{"number": "F-999"}\' WHERE seq = %s',
            [victim.seq],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    result = detectors.check_audit_chain()
    assert not result.ok
    incident = Incident.objects.get(detector_key="audit_chain")
    assert (incident.kind, incident.severity) == ("audit_tampering", "critical")
    assert list(incident.audit_events.values_list("seq", flat=True)) == [victim.seq]
    runs = [e.details["ok"] for e in audit_events("audit.chain_verified")]
    assert runs == [True, False]


def test_run_detectors_reports_what_fired(settings: Any) -> None:
    settings.INCIDENT_LOCKOUT_SPIKE_MIN = 2
    with at(NOW - dt.timedelta(minutes=5)):
        lockouts(2)
    fired = detectors.run_detectors(NOW)
    assert set(fired) == {"lockout_spike"}
    assert fired["lockout_spike"] == Incident.objects.get().pk


@pytest.mark.postgres_only
def test_verify_audit_finding_a_broken_chain_opens_the_incident_at_once() -> None:
    from django.core.management import CommandError, call_command

    for n in range(4):
        record("invoice.finalized", actor=SYSTEM, number=f"F-{n}")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = 2")
        cursor.execute("SET LOCAL session_replication_role = origin")
    with pytest.raises(CommandError, match="first broken event #2"):
        call_command("verify_audit")
    incident = Incident.objects.get(detector_key="audit_chain")
    assert incident.audit_events.count() == 0  # the missing event cannot be linked
    assert "#2: gap" in incident.summary
