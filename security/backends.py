"""Customers sign in with their e-mail address."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest


class EmailBackend(ModelBackend):
    """Authenticate by e-mail address (case-insensitive) when it names exactly one user."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not username or "@" not in username or password is None:
            return None
        matches = list(get_user_model().objects.filter(email__iexact=username.strip())[:2])
        if len(matches) != 1:
            # Run the hasher anyway so the answer takes as long as for a real account.
            get_user_model()().set_password(password)
            return None
        user = matches[0]
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
