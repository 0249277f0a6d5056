"""Framework events the detectors listen to: django-axes locking an account out."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)
LOCKOUT_TASK = "audit.incidents.tasks.detect_lockout_spike_job"


def _queue_lockout_detector() -> None:
    from django_q.tasks import async_task

    try:
        async_task(LOCKOUT_TASK, group="security")
    except Exception:  # the scheduled sweep runs the detector anyway
        logger.exception("the lockout detector could not be queued")


def _on_locked_out(sender: Any, **kwargs: Any) -> None:
    transaction.on_commit(_queue_lockout_detector)


def connect() -> None:
    """Listen to django-axes' lockout signal (the lockout detector runs after commit)."""
    from axes.signals import user_locked_out

    user_locked_out.connect(_on_locked_out, dispatch_uid="audit.incidents.lockout")
