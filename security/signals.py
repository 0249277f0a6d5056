"""Receivers for framework events only (logins, logouts, a request starting); the work is in
services."""

from __future__ import annotations

import logging
from typing import Any

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.signals import request_started
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django.http import HttpRequest
from django_q.signals import post_execute

logger = logging.getLogger(__name__)


@receiver(user_logged_in, dispatch_uid="security.session_started")
def _on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    from security.services import start_user_session

    start_user_session(request=request, user=user)


@receiver(user_logged_out, dispatch_uid="security.session_ended")
def _on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    from security.services import forget_user_session

    forget_user_session(session_key=request.session.session_key)


@receiver(request_started, dispatch_uid="security.forget_session_user")
def _forget_session_user(sender: Any, **kwargs: Any) -> None:
    """A request starts with no user read with a session yet (``security.sessions``)."""
    from security.sessions import forget_user_read_with_session

    forget_user_read_with_session()


@receiver(post_migrate, dispatch_uid="security.sync_roles")
def _sync_roles_after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    # post_migrate is sent once per app, after that app's permissions exist; the
    # last app's turn is the first moment every permission exists.
    from django.apps import apps

    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if not with_models or sender.label != with_models[-1].label:
        return
    from security.services import (
        register_dormant_staff_schedule,
        register_job_attempts_schedule,
        sync_roles,
    )

    sync_roles(record_new_groups=False)
    register_dormant_staff_schedule()
    register_job_attempts_schedule()
    from security.services.idempotency_keys import register_idempotency_schedule

    register_idempotency_schedule()


@receiver(post_execute, dispatch_uid="security.job_outcome")
def _on_job_finished(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """The cluster's monitor has a job's result: finish its attempt (security.jobs)."""
    from security.jobs import record_outcome

    try:
        record_outcome(task)
    except Exception:  # the monitor must go on saving results whatever happens here
        logger.exception("the attempt of job %s was not recorded", task.get("id"))
