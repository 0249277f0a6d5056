"""Registering django-q2 schedules: one helper for every app.

It lives on the ground floor (audit imports no other app of the project), so
security, billing and payments all use it from their post-migrate handlers.
"""

from __future__ import annotations


def ensure_schedule(
    name: str,
    *,
    func: str,
    schedule_type: str,
    minutes: int | None = None,
    timeout: int | None = None,
) -> None:
    """Exactly one schedule by this name, with these settings; safe to run any number of times.

    ``timeout``: the job's own time limit in seconds, for a job that may run longer than
    the cluster's default (``Q_TIMEOUT``)."""
    from django_q.models import Schedule

    wanted = {
        "func": func,
        "schedule_type": schedule_type,
        "minutes": minutes,
        "repeats": -1,
        "kwargs": f"q_options={{'timeout': {int(timeout)}}}" if timeout else None,
    }
    schedules = Schedule.objects.filter(name=name).order_by("pk")
    current = schedules.first()
    if current is None:
        Schedule.objects.create(name=name, **wanted)
        return
    # A copy left by an older release or a restore would run the job twice.
    schedules.exclude(pk=current.pk).delete()
    if any(getattr(current, field) != value for field, value in wanted.items()):
        for field, value in wanted.items():
            setattr(current, field, value)
        current.save(update_fields=list(wanted))
