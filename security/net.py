"""The client's network address, one way for the whole platform (lockout, sessions, payments).

django-ipware, configured for axes (``AXES_IPWARE_*`` from ``AXES_PROXY_COUNT``, see
config/settings.py): behind reverse proxies the client is read from X-Forwarded-For at
the position the proxies write it, never from what a client wrote itself.
"""

from __future__ import annotations

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest | None) -> str | None:
    """The client's IP address as the lockout sees it, or None when there is no request."""
    if request is None:
        return None
    cached = getattr(request, "axes_ip_address", None)  # axes read it for this request
    if isinstance(cached, str) and cached:
        return cached
    if not settings.PROXY_COUNT:
        # No proxy: the configuration reads REMOTE_ADDR alone, so read it directly (ipware
        # would build its engine and parse the same address on every payment).
        return request.META.get("REMOTE_ADDR") or None
    return get_client_ip_address(request) or None
