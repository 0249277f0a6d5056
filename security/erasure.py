"""Removing a person's account for good (privacy erasure): sessions, lockout records,
devices and the account itself. Called by billing's erasure of a customer."""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.models import Session
from django.db import transaction

from audit import record
from security.actors import Actor
from security.models import UserSession


def remove_user(user: Any, *, by: Actor) -> None:
    """End every session of ``user``, forget its lockout records, delete the account (its
    devices, backup codes and password history go with it); audited by id only."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        raise ValueError("user: staff accounts are not removed by a customer's erasure")
    username = user.get_username()
    user_id = user.pk
    with transaction.atomic():
        keys = list(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
        Session.objects.filter(session_key__in=keys).delete()
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            model.objects.filter(username=username).delete()
        user.delete()
        record("security.user_removed", actor=by, user_id=user_id, reason="privacy erasure")
