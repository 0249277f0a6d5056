"""Request hygiene and session policy: NUL characters refused, absolute session lifetime,
the session list, MFA for staff, no caching of signed-in pages or API answers, the
Content-Security-Policy header, and ``BrowserOnly``: the browser's layers passed by on the
bearer-only API (docs/decisions.md, 78)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from csp import middleware as csp_middleware
from csp.constants import HEADER as CSP_HEADER
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth import logout
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from security.selectors import (
    SESSION_REFRESHED_AT_KEY,
    is_session_verified,
    request_needs_second_factor,
    session_started_at,
)
from security.services import touch_user_session

# Paths a signed-in user who still owes a second factor may reach (the language
# switch only sets a cookie for such a session).
_MFA_EXEMPT_PREFIXES = ("/account/", "/static/", "/webauthn/", "/language/")


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

API_PATH_PREFIX = "/api/"
# The hooks Django's handler calls on a middleware besides the middleware itself: a layer
# with one of them cannot be passed by from ``__call__`` alone.
_HANDLER_HOOKS = ("process_view", "process_exception", "process_template_response")


def is_api_request(request: HttpRequest) -> bool:
    """A request for the API: its ``path_info`` (what the URL resolver matches, so no path
    that starts so can reach a view outside ``/api/``) starts with ``/api/``."""
    return request.path_info.startswith(API_PATH_PREFIX)


class BrowserOnly:
    """Mixin for a middleware that the browser's pages need and the API does not: on an API
    request it passes the request straight to the next layer (decision 78).

    The API authenticates bearer tokens only (``security.api.authentication``), so its
    requests need no session, no session user or its second factor, no session policy,
    no flash messages and no customer language; skipping those layers leaves a session
    cookie sent to ``/api/`` unread, so a browser's session can never act there. Put it
    first in the bases: ``class SessionMiddleware(BrowserOnly, sessions.SessionMiddleware)``.
    Only ``__call__`` is wrapped, so a middleware with a view, exception or template hook
    (CSRF's ``process_view``) is refused at import: it stays in the stack for every request.
    """

    # ``__call__`` below is synchronous: Django hands it a synchronous next layer.
    sync_capable = True
    async_capable = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hooks = [hook for hook in _HANDLER_HOOKS if hasattr(cls, hook)]
        if hooks:
            raise TypeError(f"{cls.__name__} has {', '.join(hooks)}: BrowserOnly cannot skip it")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.next_layer = get_response
        super().__init__(get_response)  # type: ignore[call-arg]

    def __call__(self, request: HttpRequest) -> Any:
        if is_api_request(request):
            return self.next_layer(request)
        return super().__call__(request)  # type: ignore[misc]


class RefuseNulMiddleware:
    """Answers 400, naming the parameter, for a NUL character in a query string or form
    field: no field accepts one and PostgreSQL cannot store or compare one, so a search
    box or a filter that reads the raw parameter would otherwise end in a database error.
    Uploaded files and JSON bodies are not looked at (their own parsers decide)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        params = [request.GET]
        if request.method == "POST" and request.content_type in _FORM_TYPES:
            params.append(request.POST)
        for query in params:
            for name, values in query.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    shown = name.replace("\x00", "\\0")[:40]
                    if is_api_request(request):  # the API's one error shape
                        from security.api.errors import error_json

                        return error_json(
                            request,
                            status_code=400,
                            code="nul_character",
                            message=f"the parameter '{shown}' contains a NUL character",
                            field=shown,
                        )
                    return HttpResponseBadRequest(
                        f"The parameter '{shown}' contains a NUL character, which no field"
                        " accepts.\n",
                        content_type="text/plain; charset=utf-8",
                    )
        return self.get_response(request)


class SessionPolicyMiddleware:
    """After authentication (and django-otp): ends sessions older than
    SESSION_ABSOLUTE_SECONDS, keeps the session list fresh, and sends a signed-in
    user who owes a second factor (staff always; customers who enrolled one) to
    verify it (or, for staff without one, to enroll) before anything else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            started = session_started_at(request)
            now = timezone.now().timestamp()
            if started is None or now - started > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
                return HttpResponseRedirect(
                    f"{reverse('security:login')}?{urlencode({'next': request.get_full_path()})}"
                )
            # At most once a minute: push the idle expiry forward (a session save)
            # and note in the session list that the session was used.
            if now - request.session.get(SESSION_REFRESHED_AT_KEY, 0) >= (
                settings.SESSION_REFRESH_SECONDS
            ):
                request.session[SESSION_REFRESHED_AT_KEY] = now
                touch_user_session(request=request)
            if (
                not request.path.startswith(_MFA_EXEMPT_PREFIXES)
                and not is_session_verified(request)
                and request_needs_second_factor(request)
            ):
                return HttpResponseRedirect(
                    f"{reverse('security:verify')}?{urlencode({'next': request.get_full_path()})}"
                )
        return self.get_response(request)


NO_STORE = "max-age=0, no-cache, no-store, must-revalidate, private"


class NoStoreMiddleware:
    """Every answer to a signed-in request, and every API answer, is ``Cache-Control:
    no-store`` (and private, no-cache, max-age=0): invoices, payments and account pages
    must stay out of browser and proxy caches, where the next user of a shared computer
    could read them back. One middleware, so a new page or endpoint cannot forget it (an
    API request has no session user: its token is checked inside the view)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if is_api_request(request) or (user is not None and user.is_authenticated):
            # One constant string (Django's add_never_cache_headers parses and rebuilds
            # the header and dates an Expires on every answer); stricter than any a view sets.
            response.headers["Cache-Control"] = NO_STORE
        return response


# What django-csp's view decorators leave on a response: each makes its policy its own.
_OWN_POLICY = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt_ro",
)


@functools.cache
def _shared_policy() -> str | None:
    """The header every response shares, or None when the settings make it vary (a
    report-only policy, excluded URL prefixes, DEBUG's bare 404 and 500 pages)."""
    if settings.DEBUG or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None):
        return None
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}
    if policy.get("EXCLUDE_URL_PREFIXES"):
        return None
    return build_policy() or None


@receiver(setting_changed)
def _forget_shared_policy(*, setting: str, **_: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY") or setting == "DEBUG":
        _shared_policy.cache_clear()


class CSPMiddleware(csp_middleware.CSPMiddleware):
    """django-csp's middleware, with the header that every response shares built once.

    django-csp builds the header from the settings for each response: 3% of a card
    payment's Python instructions (docs/decisions.md, 26). Tillit's policy has no nonce
    and its views no django-csp decorator, so the header is the same string every time.
    A response with neither (and settings without a report-only policy or excluded
    prefixes) gets that string, built once per settings; any other goes through
    django-csp's own code.
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        shared = _shared_policy()
        if (
            shared is None
            or getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _OWN_POLICY)
        ):
            return super().process_response(request, response)
        if CSP_HEADER not in response:
            response[CSP_HEADER] = shared
        # As django-csp does: a nonce asked for once the header is written is an error.
        request.csp_nonce = csp_middleware.CheckableLazyObject(  # type: ignore[attr-defined]
            self._csp_nonce_post_response
        )
        return response
