"""Template helpers for security's pages: readable sessions and lockout times."""

from __future__ import annotations

import datetime

from django import template

from security.devices import device_name

register = template.Library()


@register.filter
def minutes(value: datetime.timedelta | None) -> int:
    """``{{ cooloff_timedelta|minutes }}``: a duration in whole minutes (rounded up)."""
    if not isinstance(value, datetime.timedelta):
        return 0
    return -(-int(value.total_seconds()) // 60)


register.filter("device_name", device_name)
