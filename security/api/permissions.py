"""Scopes per view and method: every API view declares what a token needs, e.g.::

    required_scopes = {"GET": ["invoices:read"], "POST": ["invoices:write"]}

HEAD and OPTIONS need what GET needs. A method the view does not list is refused
(403 ``scope_not_declared``): a view cannot forget a scope and be open. A token without
a listed scope gets 403 ``missing_scope`` naming it. Authentication comes first (401).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from security.api.errors import ApiError
from security.api.principal import principal_of

_AS_GET = {"HEAD", "OPTIONS"}


def required_scopes_for(view: Any, method: str) -> list[str] | None:
    """The scopes a view lists for a method (HEAD and OPTIONS read GET's); None: unlisted."""
    declared: dict[str, list[str]] = getattr(view, "required_scopes", None) or {}
    method = "GET" if method in _AS_GET else method
    return declared.get(method)


class Scopes(BasePermission):
    """Authenticated with a bearer token that holds every scope the view lists for the method."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.auth is None:
            return False  # REST framework answers 401 (NotAuthenticated)
        if not hasattr(view, request.method.lower()):
            return True  # REST framework answers 405 for a method the view does not have
        needed = required_scopes_for(view, request.method)
        if needed is None:
            raise ApiError(
                f"{request.method} is not open to API tokens here",
                status_code=403,
                code="scope_not_declared",
            )
        principal = principal_of(request)
        missing = [scope for scope in needed if scope not in principal.scopes]
        if missing:
            raise ApiError(
                f"the token lacks the scope {', '.join(missing)}",
                status_code=403,
                code="missing_scope",
                field="scope",
            )
        return True
