"""Signed-in sessions: listed at login, their key rotated at a privilege change, touched
while used, ended by their owner, a password change, a role change or a disabled account.
No session key is ever recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import SYSTEM, record
from security.actors import Actor
from security.exceptions import NotAllowed
from security.models import UserSession
from security.net import client_address
from security.selectors import SESSION_STARTED_AT_KEY

User = get_user_model()


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
        ended = end_sessions(user=user, keep_session_key=request.session.session_key)
        record("security.sessions_ended", actor=by, obj=user, request=request, count=ended)
    return ended


def end_sessions(*, user: Any, keep_session_key: str | None) -> int:
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
