"""Services that administer other people's accounts: credential resets and new accounts.

Nobody ever sets or learns another person's password or second-factor secret. A
security officer *resets* an account instead: the password becomes unusable, every
second factor is deleted, every session ends, and the owner gets an e-mail with a
single-use link to choose their own password; at the next sign-in a staff member
must enrol a new factor before anything else (``selectors.needs_enrollment``). New
accounts start the same way: no password anyone knows, a link to the owner.

(Role changes, with their four-eyes rule, are ``security.roles_service``.)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp import devices_for_user

from audit import record
from security.actors import Person
from security.exceptions import NotAllowed
from security.identity import normalize_login
from security.services.mfa import require_step_up
from security.services.sessions import end_sessions

RESET_PERMISSION = "security.reset_credentials"


def _set_password_link(user: Any, request: HttpRequest) -> str:
    """A single-use link (Django's reset token: it dies when the password changes) to
    choose a password, valid PASSWORD_RESET_TIMEOUT seconds."""
    path = reverse(
        "security:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return request.build_absolute_uri(path)


def _mail_owner(user: Any, *, template: str, context: dict[str, Any]) -> None:
    """Send the owner a notice after the commit (never a secret in it: only a link)."""
    address = user.email
    subject = render_to_string(f"security/{template}_subject.txt", context).strip()
    body = render_to_string(f"security/{template}_email.txt", context)

    def send() -> None:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])

    transaction.on_commit(send)


def reset_credentials(*, user: Any, by: Person, request: HttpRequest) -> dict[str, Any]:
    """Reset another staff member's password and second factors (security officer, step-up).

    The password becomes unusable, every factor is deleted, every session ends; the
    owner is e-mailed a link to choose their own password and must enrol a new factor
    at the next sign-in. Nobody can reset their own account this way (they change their
    password on their account page). Audited as ``security.credentials_reset``.
    """
    if not (hasattr(by, "has_perm") and by.has_perm(RESET_PERMISSION)):
        raise NotAllowed("reset: needs the Security officer role")
    require_step_up(request, by)
    if by.pk == user.pk:
        raise NotAllowed("reset: you cannot reset your own account; change your password instead")
    if not user.email:
        raise NotAllowed(
            "reset: the account has no e-mail address to send the new-password link to"
        )
    with transaction.atomic():
        locked = get_user_model().objects.select_for_update().get(pk=user.pk)
        if locked.is_superuser and not by.is_superuser:
            raise NotAllowed("reset: a superuser account is reset only by a superuser")
        locked.set_unusable_password()
        locked.save(update_fields=["password"])
        removed = []
        for device in devices_for_user(locked, confirmed=None):
            removed.append(type(device).__name__)
            device.delete()
        ended = end_sessions(user=locked, keep_session_key=None)
        record(
            "security.credentials_reset",
            actor=by,
            obj=locked,
            request=request,
            username=locked.get_username(),
            reset=["sign-in", "second factors", "sessions"],
            factors_removed=sorted(removed),
            sessions_ended=ended,
            notified=True,
        )
        _mail_owner(
            locked,
            template="credentials_reset",
            context={
                "user": locked,
                "by": by.get_username(),
                "link": _set_password_link(locked, request),
                "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
            },
        )
    user.password = locked.password
    return {"factors_removed": sorted(removed), "sessions_ended": ended}


def create_account(
    *, username: str, email: str, by: Person, request: HttpRequest, **names: str
) -> Any:
    """A new account with no password anyone knows: the owner is e-mailed a link to
    choose one (and, as staff, enrols a factor at the first sign-in). Audited."""
    if not (hasattr(by, "has_perm") and by.has_perm("security.add_user")):
        raise NotAllowed("account: needs the permission to add accounts")
    require_step_up(request, by)
    unknown = set(names) - {"first_name", "last_name"}
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))}: not a field of a new account")
    address = normalize_login(email)
    if "@" not in address:
        raise NotAllowed("email: give the owner's e-mail address (the link goes there)")
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=username, email=address, password=None, **names
        )
        record(
            "security.account_created",
            actor=by,
            obj=user,
            request=request,
            username=user.get_username(),
            notified=True,
        )
        _mail_owner(
            user,
            template="account_created",
            context={
                "user": user,
                "by": by.get_username(),
                "link": _set_password_link(user, request),
                "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
            },
        )
    return user


ACCOUNT_FIELDS = ("username", "first_name", "last_name", "is_active")


def update_account(*, user: Any, changes: dict[str, Any], by: Person, request: HttpRequest) -> Any:
    """Change another account's names or whether it may sign in (the admin's user form).

    Enabling an account (a dormant or disabled one) loosens a control: it needs a fresh
    second factor, as every change from this form does. Named events:
    ``security.account_enabled`` / ``security.account_disabled`` (its sessions end) and
    ``security.account_updated`` for names.
    """
    unknown = sorted(set(changes) - set(ACCOUNT_FIELDS))
    if unknown:
        raise NotAllowed(f"{', '.join(unknown)}: not changed here")
    if not (hasattr(by, "has_perm") and by.has_perm("security.change_user")):
        raise NotAllowed("account: needs the permission to change accounts")
    require_step_up(request, by)
    with transaction.atomic():
        locked = get_user_model().objects.select_for_update().get(pk=user.pk)
        if "username" in changes:
            changes = {**changes, "username": normalize_login(changes["username"])}
        changed = sorted(k for k, v in changes.items() if getattr(locked, k) != v)
        for name in changed:
            setattr(locked, name, changes[name])
        if changed:
            locked.save(update_fields=changed)
        if "is_active" in changed:
            ended = 0 if locked.is_active else end_sessions(user=locked, keep_session_key=None)
            record(
                "security.account_enabled" if locked.is_active else "security.account_disabled",
                actor=by,
                obj=locked,
                request=request,
                username=locked.get_username(),
                sessions_ended=ended,
            )
        names = [name for name in changed if name != "is_active"]
        if names:
            record("security.account_updated", actor=by, obj=locked, request=request, fields=names)
    return locked
