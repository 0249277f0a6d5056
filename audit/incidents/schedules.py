"""The detectors' django-q2 schedules (registered after every ``migrate``)."""

from __future__ import annotations

from django.conf import settings

from audit.schedules import ensure_schedule

DETECTORS_SCHEDULE = "incidents.detectors"
CHAIN_SCHEDULE = "incidents.audit_chain"


def register_incident_schedules() -> None:
    """Exactly one schedule each for the detector sweep and the chain verification."""
    from django_q.models import Schedule

    ensure_schedule(
        DETECTORS_SCHEDULE,
        func="audit.incidents.tasks.run_detectors_job",
        schedule_type=Schedule.MINUTES,
        minutes=settings.INCIDENT_DETECTOR_MINUTES,
    )
    ensure_schedule(
        CHAIN_SCHEDULE,
        func="audit.incidents.tasks.check_audit_chain_job",
        schedule_type=Schedule.MINUTES,
        minutes=settings.INCIDENT_CHAIN_CHECK_MINUTES,
        timeout=settings.Q_LONG_TIMEOUT,  # the whole chain, streamed: a long job
    )
