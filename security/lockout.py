"""django-axes configuration: the account rule, plus the address rule axes lacks.

axes locks a *username* after AXES_FAILURE_LIMIT (10) failures for
AXES_COOLOFF_TIME (30 minutes). One axes rule has one limit, so the second rule
(an address with SECURITY_IP_FAILURE_LIMIT (100) failures within
SECURITY_IP_FAILURE_WINDOW (an hour) is blocked, whatever usernames it tries) is
added here, counted over axes's own failure log.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessFailureLog
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from security.identity import MAX_LOGIN_LENGTH, normalize_login


def username_from_credentials(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The login name axes counts failures against, normalized as accounts are stored and
    looked up (``security.identity``), so neither case nor a look-alike letter dodges it."""
    raw: Any = None
    if credentials:
        raw = credentials.get("username") or credentials.get("email")
    if raw is None:
        data = getattr(request, "data", None) or request.POST
        raw = data.get("username") or data.get("email")
    return normalize_login(raw)[:MAX_LOGIN_LENGTH]


def failures_from_address(ip_address: str | None) -> int:
    """Failed logins from this address within the window."""
    if not ip_address:
        return 0
    since = timezone.now() - settings.SECURITY_IP_FAILURE_WINDOW
    return AccessFailureLog.objects.filter(ip_address=ip_address, attempt_time__gte=since).count()


class TillitAxesHandler(AxesDatabaseHandler):
    """axes's database handler, plus the per-address block and the audit trail."""

    def is_locked(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        if super().is_locked(request, credentials):
            return True
        ip = getattr(request, "axes_ip_address", None)
        return failures_from_address(ip) >= settings.SECURITY_IP_FAILURE_LIMIT

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        already_refused = bool(getattr(request, "axes_locked_out", False))
        super().user_login_failed(sender, credentials, request=request, **kwargs)
        if request is None or already_refused:
            return
        from security.services import record_address_blocked, record_lockout

        if getattr(request, "axes_locked_out", False):
            record_lockout(
                username=username_from_credentials(request, credentials), request=request
            )
        ip = getattr(request, "axes_ip_address", None)
        if failures_from_address(ip) == settings.SECURITY_IP_FAILURE_LIMIT:
            record_address_blocked(ip_address=str(ip), request=request)
