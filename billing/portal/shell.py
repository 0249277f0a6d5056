"""The customer shell around every page: its language, its navigation, its error pages.

Every page a customer can reach (the portal, security's sign-in, second-factor,
session and password pages, the error pages) extends ``templates/base.html``, which
shows the portal's navigation when ``portal_customer`` is set and a language switch
for everyone. This module supplies what that layout needs:

* ``CustomerLanguageMiddleware``: a signed-in customer's pages are in the language of
  their profile (``Customer.language``); the language cookie follows it, so the pages
  after signing out keep speaking it. Anyone else gets Django's ``LocaleMiddleware``
  choice: the cookie the switch sets, else the browser's ``Accept-Language``.
* ``shell``: the template context processor (who the portal answers for, the other
  languages the switch offers).
* the error views (400, 403, 404, 500, CSRF failure) rendered in the same layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template import loader
from django.urls import reverse
from django.utils import translation
from django.views import defaults

from billing.portal.selectors import portal_customer
from billing.selectors import customer_for_user
from security.redirects import MAX_NEXT_LENGTH


def remember_language(response: HttpResponseBase, code: str) -> None:
    """Set the language cookie Django's LocaleMiddleware reads (as Django's own switch does)."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        code,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,  # type: ignore[arg-type]
    )


class CustomerLanguageMiddleware:
    """After authentication, django-otp and the session policy: a fully signed-in
    customer is answered in their profile's language, whatever the browser asks for."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        customer = customer_for_user(request.user)
        cookie = settings.LANGUAGE_COOKIE_NAME
        if customer is None or (
            # Every request of a settled session: the cookie already says the profile's
            # language and LocaleMiddleware has chosen it; nothing to change.
            customer.language == request.COOKIES.get(cookie) == translation.get_language()
        ):
            return self.get_response(request)
        if portal_customer(request) is None:  # the second factor is still owed
            return self.get_response(request)
        # Only for this request: the thread's language is restored after it (a
        # worker's next request, or a test's next step, starts from LocaleMiddleware's).
        with translation.override(customer.language):
            request.LANGUAGE_CODE = customer.language
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", customer.language)
        # The cookie follows the profile, unless this answer set it (the switch itself).
        if request.COOKIES.get(cookie) != customer.language and cookie not in response.cookies:
            remember_language(response, customer.language)
        return response


def shell(request: HttpRequest) -> dict[str, Any]:
    """Template context: ``portal_customer`` (the navigation shows for them), and for the
    language switch the ``other_languages`` (code, name) and ``language_next`` (this page,
    or the front door when this page answered a POST: not every such page can be fetched)."""
    current = translation.get_language()
    here = request.get_full_path() if request.method == "GET" else reverse("home")
    return {
        # Not before authentication ran: a request refused early (a bad Host) has no user.
        "portal_customer": portal_customer(request) if hasattr(request, "user") else None,
        "other_languages": [(code, name) for code, name in settings.LANGUAGES if code != current],
        "language_next": here if len(here) <= MAX_NEXT_LENGTH else reverse("home"),
    }


def _page(request: HttpRequest, template: str, status: int) -> HttpResponse:
    body = loader.render_to_string(template, request=request)
    return HttpResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, "400.html", 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, "403.html", 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _page(request, "404.html", 404)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form that came back without its CSRF token (expired page, another site)."""
    return _page(request, "403_csrf.html", 403)


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page in the shell; should that fail too, the same page without the request
    (no navigation), and Django's plain one as the last resort."""
    try:
        return _page(request, "500.html", 500)
    except Exception:
        return defaults.server_error(request)
