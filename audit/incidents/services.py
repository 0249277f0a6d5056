"""Every change of an incident: opening (by a person or a detector), its status along the
lifecycle, notes, evidence, affected customers. Each is audited in its transaction; the
security officers are emailed after an incident opens."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import SYSTEM, record
from audit.incidents.exceptions import IncidentRefused
from audit.incidents.models import Incident, IncidentEntry
from audit.models import AuditEvent
from audit.services import describe_actor

logger = logging.getLogger(__name__)
Actor = Any
Status = Incident.Status

MANAGE_PERMISSION = "audit.change_incident"
OPEN_PERMISSION = "audit.add_incident"
NOTIFY_TASK = "audit.incidents.tasks.notify_incident_opened"
MAX_EVIDENCE = 200
# A detector that keeps firing on an open incident is noted on its timeline at most this often.
REFIRE_QUIET = timedelta(hours=1)

# The lifecycle: each status, and where it may go next. Closing straight from detected or
# triaged is a false alarm (a note says why); after containment, every step is walked.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DETECTED: frozenset({Status.TRIAGED, Status.CLOSED}),
    Status.TRIAGED: frozenset({Status.CONTAINED, Status.CLOSED}),
    Status.CONTAINED: frozenset({Status.ERADICATED}),
    Status.ERADICATED: frozenset({Status.RECOVERED}),
    Status.RECOVERED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
}
_STAMP = {
    Status.TRIAGED: "triaged_at",
    Status.CONTAINED: "contained_at",
    Status.ERADICATED: "eradicated_at",
    Status.RECOVERED: "recovered_at",
    Status.CLOSED: "closed_at",
}


def _label(by: Actor) -> str:
    return describe_actor(by)[2]


def _check_may(by: Actor, permission: str) -> None:
    if by == SYSTEM:
        return
    if not (getattr(by, "is_active", False) and by.has_perm(permission)):
        raise IncidentRefused(_("incidents: needs the Security officer role"), field="user")


def _text(value: object, *, field: str, limit: int, required: bool = True) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise IncidentRefused(_("this field is required"), field=field)
    if len(text) > limit:
        raise IncidentRefused(_("at most %(limit)s characters") % {"limit": limit}, field=field)
    if any(ord(c) < 32 and c not in "\n\r\t" for c in text):
        raise IncidentRefused(_("control characters are not allowed"), field=field)
    return text


def _choice(value: object, choices: Any, *, field: str) -> str:
    if value not in choices.values:
        raise IncidentRefused(
            _("choose one of: %(choices)s") % {"choices": ", ".join(choices.values)},
            field=field,
        )
    return str(value)


def _entry(incident: Incident, kind: str, text: str, by: Actor) -> IncidentEntry:
    return IncidentEntry.objects.create(
        incident=incident, at=timezone.now(), kind=kind, text=text, author=_label(by)
    )


def _queue_notification(incident_id: int) -> None:
    from django_q.tasks import async_task

    try:
        async_task(NOTIFY_TASK, incident_id, group="security")
    except Exception:  # the admin lists the incident anyway
        logger.exception("incident %s: the notification job could not be queued", incident_id)


def open_incident(
    *,
    title: str,
    kind: str,
    severity: str,
    summary: str = "",
    detector_key: str = "",
    evidence: Iterable[int] = (),
    by: Actor,
    request: HttpRequest | None = None,
) -> tuple[Incident, bool]:
    """Open an incident (status detected) and email the security officers after commit;
    ``(incident, True)``. A detector's key already open adds a timeline entry to that
    incident instead: ``(incident, False)``. ``evidence``: audit event seqs to link."""
    _check_may(by, OPEN_PERMISSION)
    title = _text(title, field="title", limit=200)
    summary = _text(summary, field="summary", limit=5000, required=False)
    kind = _choice(kind, Incident.Kind, field="kind")
    severity = _choice(severity, Incident.Severity, field="severity")
    seqs = sorted({int(seq) for seq in evidence})[:MAX_EVIDENCE]
    with transaction.atomic():
        if detector_key:
            current = (
                Incident.objects.select_for_update()
                .filter(detector_key=detector_key)
                .exclude(status=Status.CLOSED)
                .first()
            )
            if current is not None:
                last = current.entries.filter(kind=IncidentEntry.Kind.DETECTION).last()
                if last is not None and last.at > timezone.now() - REFIRE_QUIET:
                    return current, False  # a scheduled detector still firing: once an hour
                _entry(current, IncidentEntry.Kind.DETECTION, f"{title}. {summary}".strip(), by)
                current.audit_events.add(*AuditEvent.objects.filter(seq__in=seqs))
                record(
                    "incident.detected_again",
                    actor=by,
                    obj=current,
                    request=request,
                    detector=detector_key,
                )
                return current, False
        incident = Incident.objects.create(
            title=title,
            summary=summary,
            kind=kind,
            severity=severity,
            detector_key=detector_key[:100],
            opened_by=_label(by),
            detected_at=timezone.now(),
        )
        incident.audit_events.add(*AuditEvent.objects.filter(seq__in=seqs))
        _entry(incident, IncidentEntry.Kind.DETECTION, summary or title, by)
        record(
            "incident.opened",
            actor=by,
            obj=incident,
            request=request,
            title=title,
            kind=kind,
            severity=severity,
            detector=detector_key or None,
            evidence=len(seqs),
        )
        transaction.on_commit(lambda: _queue_notification(incident.pk))
    return incident, True


def change_incident_status(
    incident: Incident, *, to: str, note: str, by: Actor, request: HttpRequest | None = None
) -> Incident:
    """Move the incident one step along its lifecycle (``TRANSITIONS``), with a note that
    says why; stamps the time of the step (time to contain, to close)."""
    _check_may(by, MANAGE_PERMISSION)
    to = _choice(to, Incident.Status, field="status")
    note = _text(note, field="note", limit=5000)
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if to not in TRANSITIONS[locked.status]:
            allowed = ", ".join(sorted(TRANSITIONS[locked.status])) or _("none: it is closed")
            raise IncidentRefused(
                _("%(from)s cannot move to %(to)s (allowed: %(allowed)s)")
                % {"from": locked.status, "to": to, "allowed": allowed},
                field="status",
            )
        previous = locked.status
        locked.status = to
        setattr(locked, _STAMP[Status(to)], timezone.now())
        locked.save(update_fields=["status", _STAMP[Status(to)]])
        _entry(locked, IncidentEntry.Kind.STATUS, f"{previous} → {to}: {note}", by)
        record(
            "incident.status_changed",
            actor=by,
            obj=locked,
            request=request,
            previous=previous,
            status=to,
        )
    return locked


def add_incident_note(
    incident: Incident, *, text: str, by: Actor, request: HttpRequest | None = None
) -> IncidentEntry:
    """Add a note to the incident's timeline (never edited afterwards); audited."""
    _check_may(by, MANAGE_PERMISSION)
    text = _text(text, field="text", limit=5000)
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        entry = _entry(locked, IncidentEntry.Kind.NOTE, text, by)
        record("incident.note_added", actor=by, obj=locked, request=request, entry=entry.pk)
    return entry


def record_containment(
    incident: Incident | None, *, action: str, text: str, by: Actor
) -> IncidentEntry | None:
    """The containment step on the incident's timeline (in the caller's transaction)."""
    if incident is None:
        return None
    return _entry(incident, IncidentEntry.Kind.CONTAINMENT, f"{action}: {text}", by)


_EDITABLE = ("title", "summary", "kind", "severity", "commander")


def update_incident(
    incident: Incident,
    *,
    changes: dict[str, Any],
    by: Actor,
    request: HttpRequest | None = None,
) -> Incident:
    """Change the title, summary, kind, severity or commander (an active staff account);
    audited with the names of what changed (and the new severity)."""
    _check_may(by, MANAGE_PERMISSION)
    unknown = sorted(set(changes) - set(_EDITABLE))
    if unknown:
        raise IncidentRefused(_("not changed here"), field=unknown[0])
    clean: dict[str, Any] = {}
    if "title" in changes:
        clean["title"] = _text(changes["title"], field="title", limit=200)
    if "summary" in changes:
        clean["summary"] = _text(changes["summary"], field="summary", limit=5000, required=False)
    if "kind" in changes:
        clean["kind"] = _choice(changes["kind"], Incident.Kind, field="kind")
    if "severity" in changes:
        clean["severity"] = _choice(changes["severity"], Incident.Severity, field="severity")
    if "commander" in changes:
        commander = changes["commander"]
        if commander is not None and not (
            get_user_model().objects.filter(pk=commander.pk, is_active=True, is_staff=True).exists()
        ):
            raise IncidentRefused(_("choose an active staff account"), field="commander")
        clean["commander"] = commander
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        changed = sorted(name for name, value in clean.items() if getattr(locked, name) != value)
        for name in changed:
            setattr(locked, name, clean[name])
        if changed:
            locked.save(update_fields=changed)
            details: dict[str, Any] = {"fields": changed}
            if "severity" in changed:
                details["severity"] = locked.severity
            if "commander" in changed:
                details["commander"] = _label(locked.commander) if locked.commander else None
            record("incident.updated", actor=by, obj=locked, request=request, **details)
    return locked


def link_audit_events(
    incident: Incident, *, seqs: Iterable[int], by: Actor, request: HttpRequest | None = None
) -> int:
    """Link audit events (by seq) to the incident as evidence; the number newly linked.
    An unknown seq is refused (``seqs``) and nothing is linked."""
    _check_may(by, MANAGE_PERMISSION)
    try:
        wanted = sorted({int(seq) for seq in seqs})
    except (TypeError, ValueError):
        raise IncidentRefused(_("give audit event numbers"), field="seqs") from None
    if not wanted or len(wanted) > MAX_EVIDENCE:
        raise IncidentRefused(
            _("give between 1 and %(max)s audit event numbers") % {"max": MAX_EVIDENCE},
            field="seqs",
        )
    found = set(AuditEvent.objects.filter(seq__in=wanted).values_list("seq", flat=True))
    missing = [seq for seq in wanted if seq not in found]
    if missing:
        raise IncidentRefused(_("no audit event #%(seq)s") % {"seq": missing[0]}, field="seqs")
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        already = set(locked.audit_events.values_list("seq", flat=True))
        new = [seq for seq in wanted if seq not in already]
        locked.audit_events.add(*new)
        if new:
            record("incident.evidence_linked", actor=by, obj=locked, request=request, seqs=new)
    return len(new)


def set_affected_customers(
    incident: Incident,
    *,
    customers: Iterable[Any],
    by: Actor,
    request: HttpRequest | None = None,
) -> Incident:
    """The customers the incident touches (for the notification duties); audited by ids."""
    _check_may(by, MANAGE_PERMISSION)
    wanted = sorted({customer.pk for customer in customers})
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        before = sorted(locked.affected_customers.values_list("pk", flat=True))
        if before != wanted:
            locked.affected_customers.set(wanted)
            record(
                "incident.customers_changed",
                actor=by,
                obj=locked,
                request=request,
                customer_ids=wanted,
            )
    return locked
