"""Security alerts: one row per kind of trouble the security officers must see now; raised
(audited when it opens, emailed after commit at most every SECURITY_ALERT_EMAIL_MINUTES,
the summary only) and resolved by a security officer."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import record
from security.actors import Actor, Person, user_of
from security.exceptions import NotAllowed
from security.models import SecurityAlert

User = get_user_model()
logger = logging.getLogger(__name__)


ALERT_EMAIL_TASK = "security.tasks.email_security_alert_job"


RESOLVE_ALERT_PERMISSION = "security.change_securityalert"


def raise_security_alert(
    *, kind: str, summary: str, detail: str = "", by: Actor, request: HttpRequest | None = None
) -> SecurityAlert:
    """Open (or count again) the alert of this kind for the security officers; audited when
    it opens; emailed to them after commit at most every SECURITY_ALERT_EMAIL_MINUTES.
    ``detail`` (which may name a key or a file) stays on the server: the email says only
    the summary and where to look."""
    now = timezone.now()
    with transaction.atomic():
        alert, created = SecurityAlert.objects.select_for_update().get_or_create(
            kind=kind,
            defaults={
                "summary": summary[:300],
                "detail": detail[:1000],
                "first_raised_at": now,
                "last_raised_at": now,
            },
        )
        opened = created or alert.resolved_at is not None
        if not created:
            if alert.resolved_at is not None:  # the trouble is back: a new episode
                alert.first_raised_at, alert.count = now, 0
                alert.resolved_at, alert.resolved_by = None, None
            alert.summary, alert.detail = summary[:300], detail[:1000]
            alert.last_raised_at = now
            alert.count += 1
        interval = timedelta(minutes=int(settings.SECURITY_ALERT_EMAIL_MINUTES))
        email = alert.emailed_at is None or alert.emailed_at <= now - interval or opened
        if email:
            alert.emailed_at = now
        alert.save()
        if opened:
            record(
                "security.alert_raised",
                actor=by,
                obj=alert,
                request=request,
                kind=kind,
                summary=alert.summary,
            )
        if email:
            transaction.on_commit(lambda: _queue_alert_email(alert.pk))
    return alert


def _queue_alert_email(alert_id: int) -> None:
    """The email goes through a background job: the request that raised the alert does not
    wait for the mail server."""
    from django_q.tasks import async_task

    try:
        async_task(ALERT_EMAIL_TASK, alert_id, group="security")
    except Exception:  # the admin banner still shows the alert
        logger.exception("security alert %s: the email job could not be queued", alert_id)


def resolve_security_alert(
    alert: SecurityAlert, *, by: Person, request: HttpRequest | None = None
) -> SecurityAlert:
    """Close an open alert once its cause is fixed: security officers only; audited."""
    if not (getattr(by, "is_active", False) and by.has_perm(RESOLVE_ALERT_PERMISSION)):
        raise NotAllowed("alerts: resolving one needs the Security officer role")
    with transaction.atomic():
        locked = SecurityAlert.objects.select_for_update().get(pk=alert.pk)
        if locked.resolved_at is not None:
            return locked
        locked.resolved_at, locked.resolved_by = timezone.now(), user_of(by)
        locked.save(update_fields=["resolved_at", "resolved_by"])
        record(
            "security.alert_resolved",
            actor=by,
            obj=locked,
            request=request,
            kind=locked.kind,
            count=locked.count,
        )
    return locked


def email_security_alert(alert_id: int) -> int:
    """Email an open alert's summary to every active security officer with an address;
    the number of recipients. No detail, key id or file name in the message."""
    from django.core.mail import send_mail

    from security.roles import SECURITY_OFFICER

    alert = SecurityAlert.objects.filter(pk=alert_id, resolved_at__isnull=True).first()
    if alert is None:
        return 0
    recipients = sorted(
        User.objects.filter(groups__name=SECURITY_OFFICER, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    if not recipients:
        logger.error("security alert %s: no security officer has an email address", alert.pk)
        return 0
    path = f"/admin/security/securityalert/{alert.pk}/change/"
    send_mail(
        subject=f"[Tillit] Security alert: {alert.summary}",
        message=(
            f"{alert.summary}\n\n"
            f"Raised {alert.count} time(s) since {alert.first_raised_at:%Y-%m-%d %H:%M} UTC,"
            f" last at {alert.last_raised_at:%Y-%m-%d %H:%M} UTC.\n"
            f"The details are in the admin (Security alerts, {path}) and the audit log.\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)
