"""Background jobs of the incident tooling (django-q2): thin wrappers around services."""

from __future__ import annotations

from typing import Any

from django.core.mail import send_mail

from audit.incidents.models import Incident
from audit.incidents.selectors import security_officer_emails


def notify_incident_opened(incident_id: int) -> int:
    """Email the security officers that an incident opened; the number of recipients.

    The message gives the severity, the title and where to look; never evidence
    details (they stay in the admin and the audit log)."""
    incident = Incident.objects.filter(pk=incident_id).first()
    recipients = security_officer_emails()
    if incident is None or not recipients:
        return 0
    path = f"/admin/audit/incident/{incident.pk}/change/"
    send_mail(
        subject=f"[Tillit] Incident INC-{incident.pk} ({incident.severity}): {incident.title}",
        message=(
            f"Incident INC-{incident.pk} was opened by {incident.opened_by} at"
            f" {incident.detected_at:%Y-%m-%d %H:%M} UTC.\n"
            f"Severity: {incident.severity}. Kind: {incident.get_kind_display()}.\n\n"
            f"Triage it in the admin ({path}); the playbook for its kind is in"
            " docs/incident-response.md.\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)


def run_detectors_job(**_: Any) -> dict[str, Any]:
    """The scheduled sweep of every detector (``audit.incidents.detectors``)."""
    from audit.incidents.detectors import run_detectors

    return run_detectors()


def check_audit_chain_job(**_: Any) -> bool:
    """The scheduled chain verification; True when the chain verified."""
    from audit.incidents.detectors import check_audit_chain

    return check_audit_chain().ok


def detect_lockout_spike_job() -> int | None:
    """Run after a lockout (event-driven): the lockout detector alone."""
    from django.utils import timezone

    from audit.incidents.detectors import detect_lockout_spike

    incident = detect_lockout_spike(timezone.now())
    return incident.pk if incident else None
