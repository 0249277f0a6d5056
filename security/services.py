"""Every state change of the security app: passwords, factors, sessions, lockouts, roles,
security alerts.

Each function owns its transaction and writes its audit event in it. None ever
records a secret (a password, an OTP secret or code, a session key).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import SYSTEM, record
from audit.schedules import ensure_schedule
from security import mfa
from security.exceptions import InvalidCode, NotAllowed, StepUpRequired, UnknownRole
from security.identity import MAX_LOGIN_LENGTH, normalize_login
from security.models import (
    BackupCode,
    BackupCodeDevice,
    JobAttempt,
    PasswordHistory,
    RoleGrant,
    SecurityAlert,
    UserSession,
)
from security.net import client_address
from security.selectors import (
    MFA_VERIFIED_AT_KEY,
    SESSION_STARTED_AT_KEY,
    confirmed_devices,
    dormant_staff,
    is_step_up_fresh,
)

User = get_user_model()
Actor = Any
logger = logging.getLogger(__name__)


def require_step_up(request: HttpRequest | None, by: Actor) -> None:
    """People act with a fresh second factor; only the platform itself acts without a request."""
    if by == SYSTEM:
        return
    if request is None or not is_step_up_fresh(request):
        raise StepUpRequired(
            _(
                "step_up: confirm a second factor again (within the last %(minutes)s"
                " minutes) to do this"
            )
            % {"minutes": settings.SECURITY_STEP_UP_SECONDS // 60}
        )


# Passwords ---------------------------------------------------------------------------


def remember_password(*, user: Any) -> None:
    """Keep the hash of the user's new password, and only as many as the history needs."""
    with transaction.atomic():
        PasswordHistory.objects.create(
            user=user, password_hash=user.password, created_at=timezone.now()
        )
        keep = list(
            PasswordHistory.objects.filter(user=user).values_list("pk", flat=True)[
                : settings.SECURITY_PASSWORD_HISTORY
            ]
        )
        PasswordHistory.objects.filter(user=user).exclude(pk__in=keep).delete()


def change_password(*, user: Any, new_password: str, by: Actor, request: HttpRequest) -> None:
    """Set a validated new password; every other session of the user ends, this one stays."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.set_password(new_password)
        locked.save(update_fields=["password"])
        user.password = locked.password
        ended = _end_sessions(user=locked, keep_session_key=request.session.session_key)
        record(
            "security.password_changed", actor=by, obj=locked, request=request, sessions_ended=ended
        )
    if request.user.pk == user.pk:
        update_session_auth_hash(request, user)


def reset_password(*, user: Any, new_password: str, request: HttpRequest | None) -> None:
    """Set a validated new password from a reset link; every session of the user ends."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.set_password(new_password)
        locked.save(update_fields=["password"])
        user.password = locked.password
        ended = _end_sessions(user=locked, keep_session_key=None)
        record(
            "security.password_reset",
            actor=locked,
            obj=locked,
            request=request,
            sessions_ended=ended,
        )


def record_password_reset_requested(*, email: str, request: HttpRequest) -> None:
    """Note that a reset was asked for (whether or not the address has an account)."""
    with transaction.atomic():
        record(
            "security.password_reset_requested", actor=SYSTEM, request=request, email=email[:254]
        )


# Lockout ------------------------------------------------------------------------------


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


# Second factors -----------------------------------------------------------------------


def mark_session_verified(*, request: HttpRequest, device: Device, method: str) -> None:
    """Bind the verified device to this session, rotate the key (privilege change), audit."""
    rotate_session_key(request)
    otp_login(request, device)
    request.session[MFA_VERIFIED_AT_KEY] = timezone.now().timestamp()
    with transaction.atomic():
        record("security.mfa_verified", actor=request.user, request=request, method=method)


def _signed_in(request: HttpRequest) -> Any:
    """The signed-in user of a request (services that take a request require one)."""
    if not request.user.is_authenticated:
        raise NotAllowed("user: sign in first")
    return request.user


def start_totp_enrollment(*, user: Any) -> TOTPDevice:
    """An unconfirmed TOTP device with a fresh secret (an earlier unconfirmed one is replaced)."""
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
        record("security.mfa_enrollment_started", actor=user, obj=user, method="totp")
    return device


def confirm_totp_device(*, device: TOTPDevice, code: str, request: HttpRequest) -> list[str] | None:
    """Confirm a pending TOTP device with its first code; returns new backup codes when the
    user had none (shown once, kept only as hashes)."""
    normalized = mfa.normalize_code(code)
    if not mfa.is_totp_code(normalized):
        raise InvalidCode(_("code: enter the 6 digits your authenticator app shows"))
    user = _signed_in(request)
    codes: list[str] | None = None
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        # verify_token saves the throttle on failure: commit it, then refuse.
        accepted = not locked.confirmed and locked.verify_token(normalized)
        if accepted:
            locked.confirmed = True
            locked.save(update_fields=["confirmed"])
            if not BackupCodeDevice.objects.filter(user=user, confirmed=True).exists():
                codes = _issue_backup_codes(user=user)
            record("security.mfa_enrolled", actor=user, obj=user, request=request, method="totp")
    if not accepted:
        raise InvalidCode(_("code: this code is not valid for the new device; try the next one"))
    mark_session_verified(request=request, device=locked, method="totp")
    return codes


def _issue_backup_codes(*, user: Any) -> list[str]:
    BackupCodeDevice.objects.filter(user=user).delete()
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = mfa.new_backup_codes()
    BackupCode.objects.bulk_create(
        [BackupCode(device=device, code_hash=mfa.hash_backup_code(c)) for c in codes]
    )
    return codes


def regenerate_backup_codes(*, user: Any, by: Actor, request: HttpRequest) -> list[str]:
    """Replace the user's backup codes with new ones (shown once); needs step-up."""
    require_step_up(request, by)
    if by.pk != user.pk:
        raise NotAllowed(_("backup_codes: only the owner may create their backup codes"))
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        codes = _issue_backup_codes(user=user)
        record(
            "security.backup_codes_issued", actor=by, obj=user, request=request, count=len(codes)
        )
    return codes


def verify_second_factor(*, request: HttpRequest, code: str) -> Device:
    """Check a TOTP or backup code for the signed-in user and mark the session verified.

    A TOTP code is accepted once (the device keeps the last time step used); a
    backup code is deleted on use. Bad or malformed input changes nothing but
    the device's throttle.
    """
    user = request.user
    if not isinstance(code, str) or len(code) > mfa.MAX_CODE_INPUT:
        raise InvalidCode(_("code: too long; enter a 6-digit code or a backup code"))
    normalized = mfa.normalize_code(code)
    method = (
        "totp"
        if mfa.is_totp_code(normalized)
        else "backup"
        if mfa.is_backup_code(normalized)
        else ""
    )
    if not method:
        raise InvalidCode(
            _("code: enter the 6 digits from your app or a backup code like abcde-fghij")
        )
    model = TOTPDevice if method == "totp" else BackupCodeDevice
    verified: Device | None = None
    with transaction.atomic():
        for device in model.objects.select_for_update().filter(user=user, confirmed=True):
            if device.verify_token(normalized):
                verified = device
                break
    if verified is None:
        with transaction.atomic():
            record("security.mfa_failed", actor=user, request=request, method=method)
        raise InvalidCode(_("code: not accepted (wrong, expired or already used)"))
    mark_session_verified(request=request, device=verified, method=method)
    return verified


def record_passkey_registered(*, request: HttpRequest) -> None:
    """Audit a newly registered passkey (django-otp-webauthn saved it)."""
    with transaction.atomic():
        record(
            "security.mfa_enrolled",
            actor=request.user,
            obj=_signed_in(request),
            request=request,
            method="passkey",
        )


def remove_device(*, device: Device, by: Actor, request: HttpRequest) -> None:
    """Delete one of the actor's own second factors; needs step-up, and staff keep at least one."""
    require_step_up(request, by)
    if device.user_id != by.pk:
        raise NotAllowed(_("device: not one of your devices"))
    remaining = [
        d
        for d in confirmed_devices(user=by)
        if d.persistent_id != device.persistent_id and not isinstance(d, BackupCodeDevice)
    ]
    if by.is_staff and not remaining and not isinstance(device, BackupCodeDevice):
        raise NotAllowed(_("device: staff must keep at least one second factor; add another first"))
    method = type(device).__name__
    with transaction.atomic():
        type(device).objects.select_for_update().filter(pk=device.pk).delete()
        if not remaining:
            BackupCodeDevice.objects.filter(user_id=by.pk).delete()
        record("security.mfa_device_removed", actor=by, obj=by, request=request, method=method)


# Sessions -----------------------------------------------------------------------------


def start_user_session(*, request: HttpRequest, user: Any) -> UserSession:
    """List a freshly signed-in session so the user can see and end it."""
    if request.session.session_key is None:
        request.session.save()
    now = timezone.now()
    request.session[SESSION_STARTED_AT_KEY] = now.timestamp()
    ip = client_address(request)
    with transaction.atomic():
        tracked, _ = UserSession.objects.update_or_create(
            session_key=request.session.session_key,
            defaults={
                "user": user,
                "created_at": now,
                "last_seen_at": now,
                "ip": ip,
                "user_agent": str(request.META.get("HTTP_USER_AGENT", ""))[:512],
            },
        )
        # The login itself is audit's auth.login; a superuser login is flagged here.
        if user.is_superuser:
            record("security.superuser_used", actor=user, request=request, flagged=True)
    return tracked


def rotate_session_key(request: HttpRequest) -> None:
    """Give this session a new key (privilege change); its listing follows the new key."""
    old_key = request.session.session_key
    request.session.cycle_key()
    request.session.save()
    if old_key:
        UserSession.objects.filter(session_key=old_key).update(
            session_key=request.session.session_key
        )


_TOUCH_EVERY = timedelta(seconds=60)


def touch_user_session(*, request: HttpRequest) -> None:
    """Note that a listed session was used now (at most once a minute, to spare writes)."""
    key = request.session.session_key
    if not key:
        return
    now = timezone.now()
    UserSession.objects.filter(session_key=key, last_seen_at__lt=now - _TOUCH_EVERY).update(
        last_seen_at=now
    )


def end_session(*, user_session: UserSession, by: Actor, request: HttpRequest | None) -> None:
    """End one of the actor's sessions server-side: the session row is deleted."""
    if by != SYSTEM and user_session.user_id != by.pk:
        raise NotAllowed("session: not one of your sessions")
    with transaction.atomic():
        Session.objects.filter(session_key=user_session.session_key).delete()
        UserSession.objects.filter(pk=user_session.pk).delete()
        record("security.session_ended", actor=by, obj=user_session.user, request=request)


def end_other_sessions(*, user: Any, by: Actor, request: HttpRequest) -> int:
    """End every session of the user except this one; returns how many ended."""
    if by != SYSTEM and by.pk != user.pk:
        raise NotAllowed("session: you may end only your own sessions")
    with transaction.atomic():
        ended = _end_sessions(user=user, keep_session_key=request.session.session_key)
        record("security.sessions_ended", actor=by, obj=user, request=request, count=ended)
    return ended


def _end_sessions(*, user: Any, keep_session_key: str | None) -> int:
    tracked = UserSession.objects.filter(user=user)
    if keep_session_key:
        tracked = tracked.exclude(session_key=keep_session_key)
    keys = list(tracked.values_list("session_key", flat=True))
    Session.objects.filter(session_key__in=keys).delete()
    tracked.delete()
    return len(keys)


def forget_user_session(*, session_key: str | None) -> None:
    """At logout: the session is gone server-side, and so is its listing (the logout itself
    is audit's auth.logout)."""
    if not session_key:
        return
    with transaction.atomic():
        Session.objects.filter(session_key=session_key).delete()
        UserSession.objects.filter(session_key=session_key).delete()


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
            _end_sessions(user=locked, keep_session_key=None)
            record(
                "security.account_disabled",
                actor=by,
                obj=locked,
                reason="dormant",
                days=settings.SECURITY_DORMANT_STAFF_DAYS,
            )
            count += 1
    return count


# Roles --------------------------------------------------------------------------------


GRANT_DAYS = 7


def set_user_roles(
    *, user: Any, roles: list[str], by: Actor, request: HttpRequest | None
) -> RoleGrant | None:
    """Give the user exactly these roles (groups); security officers only, with step-up.

    Nobody changes their own roles. Adding a role that can move money or read card data
    (``roles.FOUR_EYES_ROLES``) is not applied: it becomes a pending ``RoleGrant`` that
    another security officer approves (``approve_role_grant``), which is returned. Any
    other change applies at once and the user's sessions end, so new privileges start
    with a new session key.
    """
    from security.roles import FOUR_EYES_ROLES, ROLE_NAMES

    unknown = sorted(set(roles) - set(ROLE_NAMES))
    if unknown:
        raise UnknownRole(f"roles: unknown role(s) {', '.join(unknown)}")
    if by != SYSTEM and not by.has_perm("security.change_roles"):
        raise NotAllowed("roles: needs the Security officer role")
    if by != SYSTEM and by.pk == user.pk:
        raise NotAllowed("roles: nobody changes their own roles; ask another security officer")
    require_step_up(request, by)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        before = sorted(locked.groups.values_list("name", flat=True))
        after = sorted(set(roles))
        sensitive = sorted((set(after) - set(before)) & set(FOUR_EYES_ROLES))
        if sensitive and by != SYSTEM:
            if RoleGrant.objects.filter(user=locked, status=RoleGrant.Status.PENDING).exists():
                raise NotAllowed(
                    "roles: a grant for this account is already waiting for approval;"
                    " approve or reject it first"
                )
            grant = RoleGrant.objects.create(
                user=locked,
                roles=after,
                before=before,
                requested_by=by,
                requested_at=timezone.now(),
            )
            record(
                "security.role_grant_requested",
                actor=by,
                obj=locked,
                request=request,
                grant_id=grant.pk,
                before=before,
                after=after,
                needs_approval_for=sensitive,
            )
            return grant
        _apply_roles(locked, after, before=before, by=by, request=request)
    return None


def _apply_roles(
    locked: Any, roles: list[str], *, before: list[str], by: Actor, request: HttpRequest | None
) -> None:
    groups = list(Group.objects.filter(name__in=roles))
    locked.groups.set(groups)
    _end_sessions(user=locked, keep_session_key=None)
    record(
        "security.roles_changed",
        actor=by,
        obj=locked,
        request=request,
        before=before,
        after=sorted(g.name for g in groups),
    )


def decide_role_grant(
    grant: RoleGrant, *, approve: bool, by: Actor, request: HttpRequest | None
) -> RoleGrant:
    """A second security officer approves (the roles apply) or rejects a pending grant.

    Four eyes: neither the officer who asked nor the account's owner may approve; the
    one who asked may withdraw it (reject). Step-up; audited
    (``security.role_grant_approved`` / ``security.role_grant_rejected``). An approval is
    refused when the account's roles changed since the request or it is older than
    GRANT_DAYS days.
    """
    if not by.has_perm("security.change_roles"):
        raise NotAllowed("roles: needs the Security officer role")
    require_step_up(request, by)
    with transaction.atomic():
        locked_grant = RoleGrant.objects.select_for_update().get(pk=grant.pk)
        if locked_grant.status != RoleGrant.Status.PENDING:
            raise NotAllowed("grant: this grant was already decided")
        if approve and by.pk in (locked_grant.requested_by_id, locked_grant.user_id):
            raise NotAllowed(
                "grant: a second security officer approves (not the one who asked, not its owner)"
            )
        locked = User.objects.select_for_update().get(pk=locked_grant.user_id)
        current = sorted(locked.groups.values_list("name", flat=True))
        if approve and current != locked_grant.before:
            raise NotAllowed("grant: the account's roles changed since it was asked; ask again")
        if approve and timezone.now() - locked_grant.requested_at > timedelta(days=GRANT_DAYS):
            raise NotAllowed(f"grant: older than {GRANT_DAYS} days; ask again")
        locked_grant.status = RoleGrant.Status.APPROVED if approve else RoleGrant.Status.REJECTED
        locked_grant.decided_by = by
        locked_grant.decided_at = timezone.now()
        locked_grant.save(update_fields=["status", "decided_by", "decided_at"])
        record(
            "security.role_grant_approved" if approve else "security.role_grant_rejected",
            actor=by,
            obj=locked,
            request=request,
            grant_id=locked_grant.pk,
            requested_by=locked_grant.requested_by.get_username(),
            after=locked_grant.roles,
        )
        if approve:
            _apply_roles(locked, locked_grant.roles, before=current, by=by, request=request)
    return locked_grant


def sync_roles(
    *, by: Actor = SYSTEM, record_new_groups: bool = True
) -> dict[str, dict[str, list[str]]]:
    """Make every role's group hold exactly the matrix's permissions (security.roles).

    Permissions of models not installed yet are skipped (reported as ``missing``).
    Returns, per role, what was added, removed and missing. A change to an existing
    group is always audited; filling newly created groups is audited unless
    ``record_new_groups`` is false (the post-migrate run on an empty database).
    """
    from django.contrib.auth.models import Permission

    from security.roles import ROLES

    report: dict[str, dict[str, list[str]]] = {}
    silent: set[str] = set()
    with transaction.atomic():
        for name, wanted in ROLES.items():
            group, created = Group.objects.select_for_update().get_or_create(name=name)
            found: dict[str, Permission] = {}
            for perm in wanted:
                app_label, codename = perm.split(".", 1)
                obj = Permission.objects.filter(
                    content_type__app_label=app_label, codename=codename
                ).first()
                if obj is not None:
                    found[perm] = obj
            current = {
                f"{p.content_type.app_label}.{p.codename}": p
                for p in group.permissions.select_related("content_type")
            }
            added = sorted(set(found) - set(current))
            removed = sorted(set(current) - set(found))
            if added:
                group.permissions.add(*(found[p] for p in added))
            if removed:
                group.permissions.remove(*(current[p] for p in removed))
            report[name] = {
                "added": added,
                "removed": removed,
                "missing": sorted(set(wanted) - set(found)),
            }
            if created and not record_new_groups:
                silent.add(name)
        if any((r["added"] or r["removed"]) and n not in silent for n, r in report.items()):
            record(
                "security.roles_synced",
                actor=by,
                changes={
                    n: {"added": r["added"], "removed": r["removed"]}
                    for n, r in report.items()
                    if r["added"] or r["removed"]
                },
            )
    return report


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


JOB_ATTEMPTS_SCHEDULE_NAME = "security.purge_job_attempts"
JOB_ATTEMPTS_TASK = "security.tasks.purge_job_attempts_job"


def register_job_attempts_schedule() -> None:
    """Make exactly one daily django-q2 schedule delete old job attempts (idempotent)."""
    from django_q.models import Schedule

    ensure_schedule(
        JOB_ATTEMPTS_SCHEDULE_NAME, func=JOB_ATTEMPTS_TASK, schedule_type=Schedule.DAILY
    )


def purge_job_attempts(*, by: Actor = SYSTEM, now: Any = None) -> int:
    """Delete succeeded job attempts older than Q_ATTEMPTS_KEEP_DAYS and the others older
    than Q_FAILED_ATTEMPTS_KEEP_DAYS; never one still running. The number deleted."""
    now = now or timezone.now()
    succeeded = now - timedelta(days=int(settings.Q_ATTEMPTS_KEEP_DAYS))
    others = now - timedelta(days=int(settings.Q_FAILED_ATTEMPTS_KEEP_DAYS))
    with transaction.atomic():
        old = JobAttempt.objects.filter(
            Q(outcome=JobAttempt.Outcome.SUCCEEDED, started_at__lt=succeeded)
            | Q(
                outcome__in=[JobAttempt.Outcome.FAILED, JobAttempt.Outcome.LOST],
                started_at__lt=others,
            )
        )
        count, _ = old.delete()
        if count:
            record(
                "security.job_attempts_purged",
                actor=by,
                count=count,
                succeeded_before=succeeded.isoformat(),
                others_before=others.isoformat(),
            )
    return count


# Security alerts ----------------------------------------------------------------------

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
    alert: SecurityAlert, *, by: Actor, request: HttpRequest | None = None
) -> SecurityAlert:
    """Close an open alert once its cause is fixed: security officers only; audited."""
    if not (getattr(by, "is_active", False) and by.has_perm(RESOLVE_ALERT_PERMISSION)):
        raise NotAllowed("alerts: resolving one needs the Security officer role")
    with transaction.atomic():
        locked = SecurityAlert.objects.select_for_update().get(pk=alert.pk)
        if locked.resolved_at is not None:
            return locked
        locked.resolved_at, locked.resolved_by = timezone.now(), by
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


# Demo ---------------------------------------------------------------------------------

DEMO_BACKUP_CODE_COUNT = 5


def _demo_digest(purpose: str, username: str) -> bytes:
    return hashlib.sha256(f"tillit-demo:{purpose}:{username}".encode()).digest()


def ensure_demo_second_factor(*, user: Any, by: Actor = SYSTEM) -> dict[str, str]:
    """Give a demo login a TOTP device with a fixed, published secret and fixed backup codes.

    Demo only: the secrets are derived from the username and printed by
    seed_demo, so anyone can sign in. Refused when TILLIT_MODE=production.
    Returns what to print: the TOTP secret (base32) and the backup codes.
    """
    if settings.PRODUCTION:
        raise NotAllowed("demo: published second factors never exist in production")
    key = _demo_digest("totp", user.get_username())[:20].hex()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    codes = []
    for index in range(DEMO_BACKUP_CODE_COUNT):
        digest = _demo_digest(f"backup{index}", user.get_username())
        raw = "".join(alphabet[b % 32] for b in digest[:10])
        codes.append(f"{raw[:5]}-{raw[5:]}")
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        device = TOTPDevice.objects.filter(user=user, key=key, confirmed=True).first()
        if device is None:
            TOTPDevice.objects.filter(user=user).delete()
            TOTPDevice.objects.create(user=user, name="Demo authenticator", key=key, confirmed=True)
            record("security.demo_factor_issued", actor=by, obj=user, method="totp")
        BackupCodeDevice.objects.filter(user=user).delete()
        backup = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
        BackupCode.objects.bulk_create(
            [BackupCode(device=backup, code_hash=mfa.hash_backup_code(c)) for c in codes]
        )
    return {"TOTP secret": mfa.base32_secret(key), "Backup codes": " ".join(codes)}
