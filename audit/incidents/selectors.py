"""Reads of the incident tooling: incidents, their timeline, and whom to tell."""

from __future__ import annotations

import datetime

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from audit.incidents.models import Incident


def security_officer_emails() -> list[str]:
    """The addresses of every active security officer, sorted (incident notifications)."""
    from security.roles import SECURITY_OFFICER

    return sorted(
        get_user_model()
        .objects.filter(groups__name=SECURITY_OFFICER, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )


def open_incidents() -> QuerySet[Incident]:
    """Incidents not closed yet, newest first."""
    return Incident.objects.exclude(status=Incident.Status.CLOSED).order_by("-detected_at")


def incidents_in_period(start: datetime.datetime, end: datetime.datetime) -> QuerySet[Incident]:
    """Incidents detected in [start, end) or still open at its start: the review's list.

    Query: ``SELECT … FROM audit_incident WHERE (detected_at >= start AND detected_at <
    end) OR (detected_at < start AND (closed_at IS NULL OR closed_at >= start))``."""
    from django.db.models import Q

    return Incident.objects.filter(
        Q(detected_at__gte=start, detected_at__lt=end)
        | Q(detected_at__lt=start) & (Q(closed_at__isnull=True) | Q(closed_at__gte=start))
    ).order_by("detected_at", "pk")
