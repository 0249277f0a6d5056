"""Passwords: the history that refuses reuse, a change (every other session ends) and a
reset from a link (every session ends). No password or hash is ever recorded."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import SYSTEM, record
from security.actors import Actor
from security.models import PasswordHistory
from security.services.sessions import end_sessions

User = get_user_model()


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
        ended = end_sessions(user=locked, keep_session_key=request.session.session_key)
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
        ended = end_sessions(user=locked, keep_session_key=None)
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
