"""Throttles per client application and per user (rates ``API_THROTTLE_CLIENT_RATE`` and
``API_THROTTLE_USER_RATE``); over either, 429 in the error shape with ``Retry-After``.

They count in the database (``security.ApiRateCounter``, ``db.counters``): every gunicorn
worker and every host shares one count, and one statement adds the request to both
counters and reads them. Windows are fixed (a rate of 300/minute allows 300 requests in
each calendar minute): a client can send up to twice the rate across a window's edge,
which the rates allow for. The table is UNLOGGED on PostgreSQL: counters are not worth a
WAL flush per request, and a crash that empties them only forgives the current window.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from db.counters import count_hits
from security.models import ApiRateCounter

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"300/minute"`` -> (300, 60): requests allowed per window, window in seconds."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period]


class ApiRateThrottle(BaseThrottle):
    """Every token of one application together (``client:<id>``), and every token acting
    for one customer user, whichever app holds it (``user:<id>``)."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        token = request.auth
        if token is None:
            return True
        limits = [(f"client:{token.application_id}", parse_rate(settings.API_THROTTLE_CLIENT_RATE))]
        if token.user_id is not None:
            limits.append((f"user:{token.user_id}", parse_rate(settings.API_THROTTLE_USER_RATE)))
        now = timezone.now().timestamp()
        windows = {key: int(now // seconds) * seconds for key, (_, seconds) in limits}
        hits = count_hits(ApiRateCounter._meta.db_table, list(windows.items()))
        waits = [
            windows[key] + seconds - now
            for key, (allowed, seconds) in limits
            if hits.get(key, 0) > allowed
        ]
        self._wait = max(waits) if waits else None
        return not waits

    def wait(self) -> float | None:
        return self._wait
