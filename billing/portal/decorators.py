"""The one guard every portal page goes through."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import translation

from billing.selectors import customer_for_user
from security.decorators import mfa_required

View = Callable[..., HttpResponse]


def portal_view(view: View) -> View:
    """Signed in (with the second factor when the user has one), linked to a customer
    (404 for staff and outsiders), and answered in the customer's language."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        customer = customer_for_user(request.user)
        if customer is None:
            raise Http404("no portal account")
        request.portal_customer = customer  # type: ignore[attr-defined]
        with translation.override(customer.language):
            request.LANGUAGE_CODE = customer.language
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and callable(response.render):
                response.render()
        response.headers.setdefault("Content-Language", customer.language)
        return response

    return mfa_required(wrapper)
