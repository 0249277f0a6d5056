"""Containment of a security incident on the security side: ending sessions, revoking API
tokens and disabling a staff account. Called by the incident tooling
(``audit.incidents.containment``), which adds the step to the incident's timeline.

Each function needs the containment permission and a fresh second factor, ends the
sessions server-side (the session rows are deleted: the next request of that browser
needs a new login) and is audited. Disabling an account is undone by enabling it in the
account's admin form (``security.accounts.update_account``, step-up, audited).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest

from audit import record
from security.accounts import update_account
from security.exceptions import NotAllowed
from security.models import UserSession
from security.roles import STAFF_ROLES
from security.services import require_step_up
from security.services.clients import revoke_tokens

CONTAIN_PERMISSION = "audit.contain_incident"


def _check_actor(by: Any, request: HttpRequest | None) -> None:
    if not (getattr(by, "is_active", False) and by.has_perm(CONTAIN_PERMISSION)):
        raise NotAllowed("containment: needs the Security officer role")
    require_step_up(request, by)


def _staff_filter() -> Q:
    return Q(is_staff=True) | Q(is_superuser=True) | Q(groups__name__in=STAFF_ROLES)


def _end_listed_sessions(tracked: Any) -> int:
    keys = list(tracked.values_list("session_key", flat=True))
    Session.objects.filter(session_key__in=keys).delete()
    UserSession.objects.filter(session_key__in=keys).delete()
    return len(keys)


def revoke_user_sessions(*, user: Any, by: Any, request: HttpRequest | None) -> int:
    """End every session of one account (the actor's own current one excepted); the number
    ended. Audited ``security.sessions_revoked``."""
    _check_actor(by, request)
    keep = request.session.session_key if request is not None else None
    with transaction.atomic():
        tracked = UserSession.objects.filter(user=user).exclude(session_key=keep or "")
        ended = _end_listed_sessions(tracked)
        record(
            "security.sessions_revoked",
            actor=by,
            obj=user,
            request=request,
            scope="user",
            count=ended,
        )
    return ended


def revoke_staff_sessions(*, by: Any, request: HttpRequest | None) -> int:
    """End every session of every staff account except the actor's current one (the officer
    containing the incident stays signed in); the number ended. Audited."""
    _check_actor(by, request)
    keep = request.session.session_key if request is not None else None
    staff_ids = get_user_model().objects.filter(_staff_filter()).values("pk")
    with transaction.atomic():
        tracked = UserSession.objects.filter(user_id__in=staff_ids).exclude(session_key=keep or "")
        ended = _end_listed_sessions(tracked)
        record("security.sessions_revoked", actor=by, request=request, scope="staff", count=ended)
    return ended


def disable_staff_account(*, user: Any, by: Any, request: HttpRequest) -> Any:
    """Disable a staff account and end its sessions (``security.account_disabled``); enabling
    it again is the account form's, with step-up. A customer account is refused here."""
    _check_actor(by, request)
    if not get_user_model().objects.filter(_staff_filter(), pk=user.pk).exists():
        raise NotAllowed("user: not a staff account")
    if user.pk == getattr(by, "pk", None):
        raise NotAllowed("user: you cannot disable your own account")
    return update_account(user=user, changes={"is_active": False}, by=by, request=request)


def revoke_api_tokens(
    *, application: Any = None, user: Any = None, by: Any, request: HttpRequest | None
) -> int:
    """Revoke API tokens: every token of one client (``application``), of one user (``user``,
    whichever apps hold them) or, with neither, of every client. Access tokens end at once
    (the next API request with one is a 401), refresh tokens cannot be used again. The
    number ended; audited ``security.api_tokens_revoked``. Clients get new tokens only by
    authenticating again (a compromised client secret: remove the client in the admin)."""
    _check_actor(by, request)
    scope = "application" if application is not None else "user" if user is not None else "all"
    with transaction.atomic():
        ended = revoke_tokens(
            applications=[application] if application is not None else None,
            users=[user] if user is not None else None,
        )
        record(
            "security.api_tokens_revoked",
            actor=by,
            obj=application if application is not None else user,
            request=request,
            scope=scope,
            client_id=str(getattr(application, "client_id", "") or ""),
            count=ended,
        )
    return ended
