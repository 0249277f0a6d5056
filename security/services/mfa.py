"""Second factors: step-up, TOTP enrollment, backup codes, passkeys, verifying a code and
removing a device. No code, secret or backup code is ever recorded."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import SYSTEM, record
from security import mfa
from security.actors import Actor, Person, signed_in
from security.exceptions import InvalidCode, NotAllowed, StepUpRequired
from security.models import BackupCode, BackupCodeDevice
from security.selectors import MFA_VERIFIED_AT_KEY, confirmed_devices, is_step_up_fresh
from security.services.sessions import rotate_session_key

User = get_user_model()


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


def regenerate_backup_codes(*, user: Any, by: Person, request: HttpRequest) -> list[str]:
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


def remove_device(*, device: Device, by: Person, request: HttpRequest) -> None:
    """Delete one of the actor's own second factors; needs step-up, and staff keep at least one."""
    require_step_up(request, by)
    owner = signed_in(by)
    if device.user_id != owner.pk:
        raise NotAllowed(_("device: not one of your devices"))
    remaining = [
        d
        for d in confirmed_devices(user=owner)
        if d.persistent_id != device.persistent_id and not isinstance(d, BackupCodeDevice)
    ]
    if owner.is_staff and not remaining and not isinstance(device, BackupCodeDevice):
        raise NotAllowed(_("device: staff must keep at least one second factor; add another first"))
    method = type(device).__name__
    with transaction.atomic():
        type(device).objects.select_for_update().filter(pk=device.pk).delete()
        if not remaining:
            BackupCodeDevice.objects.filter(user_id=owner.pk).delete()
        record(
            "security.mfa_device_removed", actor=owner, obj=owner, request=request, method=method
        )
