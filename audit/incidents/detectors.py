"""Detectors: each watches one condition and opens an incident (security officers emailed)
when it holds. While that incident is open, firing again adds to its timeline.

Scheduled: ``run_detectors`` every INCIDENT_DETECTOR_MINUTES (spikes, keys, backups) and
``check_audit_chain`` every INCIDENT_CHAIN_CHECK_MINUTES (it reads the whole chain,
streamed). Event-driven: a lockout (django-axes' signal) runs the lockout detector after
its commit, and ``manage.py verify_audit`` that finds a broken chain opens the incident at
once (``report_broken_chain``).

A spike is at least the detector's minimum in the last hour, and at least
INCIDENT_SPIKE_FACTOR times the hourly average of the seven days before that hour.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from audit import SYSTEM
from audit import evidence as figures
from audit.exports import MISMATCH, CopyCheck
from audit.exports import check_exported_copies as exported_copies
from audit.incidents.models import Incident
from audit.incidents.services import open_incident
from audit.models import AuditEvent
from audit.verification import verify_and_record
from audit.verify import VerificationResult

logger = logging.getLogger(__name__)

WINDOW = datetime.timedelta(hours=1)
BASELINE = datetime.timedelta(days=7)
EVIDENCE = 50


@dataclass(frozen=True)
class Spike:
    """What a spike detector measured."""

    count: int
    baseline_per_hour: float
    threshold: int
    evidence: list[int]

    @property
    def fired(self) -> bool:
        return self.count >= self.threshold


def measure_spike(actions: Iterable[str], *, minimum: int, now: datetime.datetime) -> Spike:
    """Events of these actions in the last hour against the hourly average of the week before.

    Queries: ``SELECT COUNT(*) FILTER (WHERE created_at >= now - 1h), COUNT(*) FILTER (WHERE
    created_at < now - 1h) FROM audit_auditevent WHERE action IN (…) AND created_at >= now -
    7d - 1h AND created_at < now``; the last hour's first 50 seqs as evidence."""
    from django.db.models import Q

    actions = list(actions)
    window_start = now - WINDOW
    counts = AuditEvent.objects.filter(
        action__in=actions, created_at__gte=window_start - BASELINE, created_at__lt=now
    ).aggregate(
        recent=Count("seq", filter=Q(created_at__gte=window_start)),
        before=Count("seq", filter=Q(created_at__lt=window_start)),
    )
    baseline = counts["before"] / (BASELINE / WINDOW)
    threshold = max(minimum, int(settings.INCIDENT_SPIKE_FACTOR * baseline + 0.999))
    evidence: list[int] = []
    if counts["recent"] >= threshold:
        evidence = list(
            AuditEvent.objects.filter(
                action__in=actions, created_at__gte=window_start, created_at__lt=now
            )
            .order_by("seq")
            .values_list("seq", flat=True)[:EVIDENCE]
        )
    return Spike(counts["recent"], round(baseline, 2), threshold, evidence)


def _open(
    key: str, *, title: str, kind: str, severity: str, summary: str, evidence: Iterable[int] = ()
) -> Incident:
    incident, _created = open_incident(
        title=title,
        kind=kind,
        severity=severity,
        summary=summary,
        detector_key=key,
        evidence=evidence,
        by=SYSTEM,
    )
    return incident


def _spike_detector(
    key: str, actions: Iterable[str], *, minimum: int, title: str, kind: str, severity: str
) -> Callable[[datetime.datetime], Incident | None]:
    def detect(now: datetime.datetime) -> Incident | None:
        spike = measure_spike(actions, minimum=minimum, now=now)
        if not spike.fired:
            return None
        return _open(
            key,
            title=title,
            kind=kind,
            severity=severity,
            summary=(
                f"{spike.count} in the last hour (threshold {spike.threshold}; the week's"
                f" hourly average was {spike.baseline_per_hour})."
            ),
            evidence=spike.evidence,
        )

    return detect


def detect_lockout_spike(now: datetime.datetime) -> Incident | None:
    """Lockouts of accounts and addresses above baseline: a credential-stuffing attack."""
    return _spike_detector(
        "lockout_spike",
        [figures.LOCKOUT, figures.ADDRESS_BLOCKED],
        minimum=settings.INCIDENT_LOCKOUT_SPIKE_MIN,
        title="Spike of login lockouts",
        kind=Incident.Kind.ACCOUNT_TAKEOVER,
        severity=Incident.Severity.HIGH,
    )(now)


def detect_reveal_spike(now: datetime.datetime) -> Incident | None:
    """Card numbers revealed (for charges) above baseline: the vault may be abused."""
    return _spike_detector(
        "reveal_spike",
        [figures.CARD_REVEALED],
        minimum=settings.INCIDENT_REVEAL_SPIKE_MIN,
        title="Card number reveals above baseline",
        kind=Incident.Kind.CARD_DATA_EXPOSURE,
        severity=Incident.Severity.CRITICAL,
    )(now)


def detect_fraud_decline_spike(now: datetime.datetime) -> Incident | None:
    """Payments blocked or declined by the risk engine above baseline: a fraud wave."""
    return _spike_detector(
        "fraud_decline_spike",
        figures.FRAUD_DECLINES,
        minimum=settings.INCIDENT_FRAUD_DECLINE_SPIKE_MIN,
        title="Spike of fraud declines",
        kind=Incident.Kind.FRAUD_WAVE,
        severity=Incident.Severity.HIGH,
    )(now)


def detect_keys_near_cryptoperiod(now: datetime.datetime) -> list[Incident]:
    """A KEK, the audit checkpoint key, the invoice signing certificate or the OpenID
    Connect ID-token key due within GOVERNANCE_KEY_WARNING_DAYS, or past its cryptoperiod
    (DEKs and card-entry keys rotate by their own schedule and are left out). One
    incident per key."""
    opened = []
    for row in figures.key_inventory(now):
        if row["name"].startswith(("DEK", "card-entry")):
            continue
        if row["status"] not in {"due_soon", "overdue"}:
            continue
        when = "is past" if row["status"] == "overdue" else "nears the end of"
        opened.append(
            _open(
                f"key_cryptoperiod:{row['name']}:{row['key_id']}"[:100],
                title=f"The {row['name']} {when} its cryptoperiod",
                kind=Incident.Kind.KEY_COMPROMISE,
                severity=(
                    Incident.Severity.HIGH if row["status"] == "overdue" else Incident.Severity.LOW
                ),
                summary=(
                    f"In use since {row['since']} ({row['age_days']} days) of a"
                    f" {row['cryptoperiod_days']}-day cryptoperiod ending {row['ends_at']}:"
                    " rotate it (docs/incident-response.md, Key compromise)."
                ),
            )
        )
    return opened


def detect_failed_backups(now: datetime.datetime) -> Incident | None:
    """A backup or a restore test failed in the last day."""
    failed = figures.failed_backup_runs(now - datetime.timedelta(days=1))
    if not failed:
        return None
    return _open(
        "backup_failed",
        title="A backup or restore test failed",
        kind=Incident.Kind.DATA_LOSS,
        severity=Incident.Severity.HIGH,
        summary=f"{len(failed)} failed in the last 24 hours: {', '.join(failed[:10])}.",
    )


def report_broken_chain(result: VerificationResult, *, by: Any = SYSTEM) -> Incident | None:
    """Open the audit-tampering incident for a failed verification (None when it passed)."""
    first = result.first_problem
    if first is None:
        return None
    evidence = [first.seq] if AuditEvent.objects.filter(seq=first.seq).exists() else []
    incident, _created = open_incident(
        title="The audit chain failed verification",
        kind=Incident.Kind.AUDIT_TAMPERING,
        severity=Incident.Severity.CRITICAL,
        summary=f"First problem {first}; {len(result.problems)} problem(s) in all.",
        detector_key="audit_chain",
        evidence=evidence,
        by=by,
    )
    return incident


def check_audit_chain(*, by: Any = SYSTEM, source: str = "schedule") -> VerificationResult:
    """Verify the whole chain (streamed) and keep the outcome
    (``audit.verification.verify_and_record``); open an incident if broken."""
    _verification, result = verify_and_record(by=by, source=source)
    report_broken_chain(result, by=by)
    return result


def check_exported_copies(*, by: Any = SYSTEM) -> list[CopyCheck]:
    """Check every exported copy of the chain within reach against the live chain
    (``audit.exports``); a copy that does not match opens the audit-tampering incident
    (one per open incident, like the chain check's). Missing copies are reported, not
    taken for tampering."""
    checks = exported_copies()
    bad = [check for check in checks if check.status == MISMATCH]
    if bad:
        open_incident(
            title="An exported copy of the audit chain does not match the live chain",
            kind=Incident.Kind.AUDIT_TAMPERING,
            severity=Incident.Severity.CRITICAL,
            summary="; ".join(
                f"{check.kind} {check.name}: {', '.join(check.problems[:2])}" for check in bad[:10]
            ),
            detector_key="audit_exports",
            by=by,
        )
    return checks


SPIKE_DETECTORS: dict[str, Callable[[datetime.datetime], Incident | None]] = {
    "lockout_spike": detect_lockout_spike,
    "reveal_spike": detect_reveal_spike,
    "fraud_decline_spike": detect_fraud_decline_spike,
    "backup_failed": detect_failed_backups,
}


def run_detectors(now: datetime.datetime | None = None) -> dict[str, Any]:
    """Every detector but the chain check, once; which fired (their incident ids). One
    failing detector does not stop the others (it is logged and reported)."""
    now = now or timezone.now()
    fired: dict[str, Any] = {}
    for name, detect in SPIKE_DETECTORS.items():
        try:
            incident = detect(now)
        except Exception:
            logger.exception("detector %s failed", name)
            fired[name] = "error"
            continue
        if incident is not None:
            fired[name] = incident.pk
    try:
        keys = detect_keys_near_cryptoperiod(now)
    except Exception:
        logger.exception("detector key_cryptoperiod failed")
        fired["key_cryptoperiod"] = "error"
    else:
        if keys:
            fired["key_cryptoperiod"] = [incident.pk for incident in keys]
    return fired
