"""ensure_schedule: exactly one schedule per name, with the wanted settings."""

from __future__ import annotations

import pytest
from django_q.models import Schedule

from audit.schedules import ensure_schedule

pytestmark = pytest.mark.django_db


def test_a_schedule_is_created_once_however_often_it_is_ensured() -> None:
    for _ in range(3):
        ensure_schedule("demo.job", func="demo.tasks.job", schedule_type=Schedule.HOURLY)

    (schedule,) = Schedule.objects.filter(name="demo.job")
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "demo.tasks.job",
        Schedule.HOURLY,
        -1,
    )


def test_changed_settings_are_applied_and_stray_copies_removed() -> None:
    first = Schedule.objects.create(name="demo.job", func="old.task", schedule_type="D")
    Schedule.objects.create(name="demo.job", func="old.task", schedule_type="D")

    ensure_schedule("demo.job", func="new.task", schedule_type=Schedule.MINUTES, minutes=5)

    (schedule,) = Schedule.objects.filter(name="demo.job")
    assert schedule.pk == first.pk
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "new.task",
        Schedule.MINUTES,
        5,
    )
