"""Framework events recorded in the chain: sign-ins and Django admin changes.

Signals are the house style's one sanctioned use: they come from the
framework (``django.contrib.auth`` and ``django.contrib.admin``), not from our
own services, which call ``audit.record`` themselves.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry, LogEntryManager
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.http import HttpRequest

from audit.services import record_event

ADMIN_ACTIONS = {ADDITION: "admin.added", CHANGE: "admin.changed", DELETION: "admin.deleted"}
_MIRRORED = "_audit_mirrored"


def on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    record_event("auth.login", actor=user, obj=None, request=request, details={})


def on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    actor = user if user is not None else AnonymousUser()
    record_event("auth.logout", actor=actor, obj=None, request=request, details={})


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Only the attempted username: the credentials dict also holds the password
    # (masked by Django, but never ours to keep).
    field = get_user_model().USERNAME_FIELD
    attempted = credentials.get(field, credentials.get("username", ""))
    username = attempted[:150] if isinstance(attempted, str) else ""
    record_event(
        "auth.login_failed",
        actor=AnonymousUser(),
        obj=None,
        request=request,
        details={"username": username},
    )


def mirror_log_entry(entry: LogEntry) -> None:
    """Append one admin LogEntry to the chain (in the admin's own transaction)."""
    if getattr(entry, _MIRRORED, False) or entry.action_flag not in ADMIN_ACTIONS:
        return
    content_type = entry.content_type
    object_type = f"{content_type.app_label}.{content_type.model}" if content_type else ""
    record_event(
        ADMIN_ACTIONS[entry.action_flag],
        actor=entry.user,
        obj=None,
        request=None,
        details={
            "log_entry_id": entry.pk,
            "content_type": object_type,
            "object_id": str(entry.object_id or ""),
            "object_repr": entry.object_repr,
            "change_message": entry.change_message,
        },
        object_ref=(object_type, str(entry.object_id or "")[:64]),
    )
    setattr(entry, _MIRRORED, True)


def on_log_entry_saved(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if created and not kwargs.get("raw", False):
        mirror_log_entry(instance)


def _mirror_bulk_logged_actions(log_actions: Any) -> Any:
    """Django 5.1+ logs a multi-object admin deletion with bulk_create, which sends
    no post_save; mirror whatever log_actions returns that the signal did not."""

    @functools.wraps(log_actions)
    def wrapper(self: LogEntryManager, *args: Any, **kwargs: Any) -> Any:
        result = log_actions(self, *args, **kwargs)
        entries = [result] if isinstance(result, LogEntry) else list(result or [])
        for entry in entries:
            mirror_log_entry(entry)
        return result

    wrapper._audit_wrapped = True  # type: ignore[attr-defined]
    return wrapper


def connect() -> None:
    """Connect the receivers (called once from AuditConfig.ready)."""
    user_logged_in.connect(on_login, dispatch_uid="audit.auth.login")
    user_logged_out.connect(on_logout, dispatch_uid="audit.auth.logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.auth.login_failed")
    post_save.connect(on_log_entry_saved, sender=LogEntry, dispatch_uid="audit.admin.log_entry")
    if not getattr(LogEntryManager.log_actions, "_audit_wrapped", False):
        LogEntryManager.log_actions = _mirror_bulk_logged_actions(  # type: ignore[method-assign]
            LogEntryManager.log_actions
        )
