"""Sign-in backends: staff by username, customers by e-mail address.

Both read the signed-in user of every request by a query compiled once per process
(``db.compiled``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from db.compiled import compiled
from security.identity import normalize_login
from security.selectors import request_users


@compiled(int)
def _user_by_id(pk: int) -> Any:
    return request_users().filter(pk=pk)


class UsernameBackend(ModelBackend):
    """Django's ModelBackend; the user of each request read by a compiled query, or
    taken from the session's own read when that read brought it (``security.sessions``)."""

    def get_user(self, user_id: Any) -> Any:
        if type(user_id) is not int:
            return super().get_user(user_id)
        from security.sessions import user_read_with_session

        user = user_read_with_session(user_id) or _user_by_id.first(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


class EmailBackend(UsernameBackend):
    """Authenticate by e-mail address (normalized: ``security.identity``) when it names
    exactly one user."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not username or "@" not in username or password is None:
            return None
        # Exactly the stored, normalized address: never the database's own case rules
        # (UPPER matched look-alikes the lockout counted as other names).
        address = normalize_login(username)
        matches = list(get_user_model().objects.filter(email=address)[:2])
        if len(matches) != 1:
            # Run the hasher anyway so the answer takes as long as for a real account.
            get_user_model()().set_password(password)
            return None
        user = matches[0]
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
