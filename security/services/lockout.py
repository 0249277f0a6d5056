"""Locked out: failed logins audited (django-axes locks), an account unlocked by a security
officer, dormant staff accounts disabled by a daily job."""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest

from audit import SYSTEM, record
from audit.schedules import ensure_schedule
from security.actors import Actor
from security.exceptions import NotAllowed
from security.identity import MAX_LOGIN_LENGTH, normalize_login
from security.selectors import dormant_staff
from security.services.mfa import require_step_up
from security.services.sessions import end_sessions

User = get_user_model()


def record_lockout(*, username: str, request: HttpRequest) -> None:
    """Audit that an account has just been locked after too many failed logins."""
    with transaction.atomic():
        record(
            "security.lockout",
            actor=SYSTEM,
            request=request,
            username=normalize_login(username)[:MAX_LOGIN_LENGTH],
            minutes=int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
        )


def record_address_blocked(*, ip_address: str, request: HttpRequest) -> None:
    """Audit that an address has just been blocked for too many failed logins."""
    with transaction.atomic():
        record(
            "security.address_blocked",
            actor=SYSTEM,
            request=request,
            address=ip_address,
            failures=settings.SECURITY_IP_FAILURE_LIMIT,
        )


def unlock_account(*, username: str, by: Actor, request: HttpRequest | None) -> int:
    """Lift the lockout of a login name; security officers only, with a fresh second factor."""
    if by != SYSTEM and not by.has_perm("security.unlock_account"):
        raise NotAllowed("unlock_account: needs the Security officer role")
    require_step_up(request, by)
    name = normalize_login(username)
    if not name or len(name) > MAX_LOGIN_LENGTH:
        raise ValueError(
            f"username: give the login name to unlock (at most {MAX_LOGIN_LENGTH} characters)"
        )
    with transaction.atomic():
        count = int(AxesProxyHandler.reset_attempts(username=name))
        record("security.unlocked", actor=by, request=request, username=name, attempts=count)
    return count


def disable_dormant_staff(*, by: Actor = SYSTEM) -> int:
    """Deactivate staff accounts unused for SECURITY_DORMANT_STAFF_DAYS (PCI DSS 8.2.6)."""
    count = 0
    for user in dormant_staff():
        with transaction.atomic():
            locked = User.objects.select_for_update().get(pk=user.pk)
            if not locked.is_active:
                continue
            locked.is_active = False
            locked.save(update_fields=["is_active"])
            end_sessions(user=locked, keep_session_key=None)
            record(
                "security.account_disabled",
                actor=by,
                obj=locked,
                reason="dormant",
                days=settings.SECURITY_DORMANT_STAFF_DAYS,
            )
            count += 1
    return count


DORMANT_STAFF_SCHEDULE_NAME = "security.disable_dormant_staff"


DORMANT_STAFF_TASK = "security.tasks.disable_dormant_staff_accounts"


def register_dormant_staff_schedule() -> None:
    """Make exactly one daily django-q2 schedule disable dormant staff accounts.

    Idempotent (run after every ``migrate``); deployment configuration, not an event.
    """
    from django_q.models import Schedule

    ensure_schedule(
        DORMANT_STAFF_SCHEDULE_NAME, func=DORMANT_STAFF_TASK, schedule_type=Schedule.DAILY
    )
