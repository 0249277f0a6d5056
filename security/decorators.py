"""View guards: a verified second factor, and a fresh one (step-up) for sensitive actions.

Use ``step_up_required`` on any view that reveals or deletes a card, refunds,
changes roles, rotates keys or exports data; services that do such things call
``security.services.require_step_up`` too, so forgetting the decorator fails
closed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from security.selectors import (
    is_session_verified,
    is_step_up_fresh,
    needs_enrollment,
    request_needs_second_factor,
)

View = Callable[..., HttpResponse]


def _back_to(request: HttpRequest) -> str:
    return request.get_full_path() if request.method == "GET" else reverse("security:account")


def mfa_required(view: View) -> View:
    """Signed in, and the second factor verified when the user has (or, as staff, must have) one."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if needs_enrollment(request.user):
            return HttpResponseRedirect(reverse("security:enroll_totp"))
        if not is_session_verified(request) and request_needs_second_factor(request):
            query = urlencode({"next": _back_to(request)})
            return HttpResponseRedirect(f"{reverse('security:verify')}?{query}")
        return view(request, *args, **kwargs)

    return wrapper


def step_up_required(view: View) -> View:
    """A second factor verified within SECURITY_STEP_UP_SECONDS, else a detour to confirm one."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_step_up_fresh(request):
            query = urlencode({"next": _back_to(request)})
            return HttpResponseRedirect(f"{reverse('security:step_up')}?{query}")
        return view(request, *args, **kwargs)

    return mfa_required(wrapper)
