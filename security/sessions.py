"""The session engine: Django's database sessions, read by a query compiled once, with
the signed-in user in the same query.

Every signed-in request reads its session first, then its user. The session list
(``security.models.UserSession``, one row per signed-in session) names the session's
user, so one query reads both: the user (as ``security.selectors.request_users`` does)
joined to its session-list row, with the session's data. The sign-in backend then takes
that user instead of reading it again, but only if it is the user the session's own
signed data names (``user_read_with_session``). A session with no session-list row is
read alone, as Django does. Set as ``SESSION_ENGINE`` (config/settings.py). Storage,
expiry and the session list are Django's and ours as before.
"""

from __future__ import annotations

import datetime
from contextvars import ContextVar
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db.models import Subquery
from django.utils import timezone

from db.compiled import compiled
from security.selectors import request_users

# The user the current request's session read brought with it (None: it brought none).
_read_with_session: ContextVar[Any] = ContextVar("tillit_user_read_with_session", default=None)


def _live(session_key: str, now: datetime.datetime) -> Any:
    return SessionStore.get_model_class().objects.filter(
        session_key=session_key, expire_date__gt=now
    )


_live_session = compiled(str, datetime.datetime)(_live)


@compiled(str, datetime.datetime)
def _session_with_user(session_key: str, now: datetime.datetime) -> Any:
    live = _live(session_key, now)
    return (
        request_users()
        .filter(sessions__session_key=session_key)
        .annotate(
            session_data=Subquery(live.values("session_data")[:1]),
            session_expire_date=Subquery(live.values("expire_date")[:1]),
        )
    )


def user_read_with_session(user_id: int) -> Any:
    """The user the request's session read brought, if it is ``user_id`` (the user the
    session's signed data names); None otherwise. Taken once."""
    user = _read_with_session.get()
    _read_with_session.set(None)
    return user if user is not None and user.pk == user_id else None


def forget_user_read_with_session() -> None:
    _read_with_session.set(None)


class SessionStore(DatabaseSessionStore):
    """``_get_session_from_db`` as Django's, by one compiled query with the user."""

    def _get_session_from_db(self) -> Any:
        forget_user_read_with_session()
        key = self.session_key
        if not isinstance(key, str):
            self._session_key = None
            return None
        now = timezone.now()
        user = _session_with_user.first(key, now)
        if user is None:  # not in the session list: the session alone
            found = _live_session.first(key, now)
        elif user.session_data is None:  # listed, but expired or gone
            found = None
        else:
            _read_with_session.set(user)
            found = self.model(
                session_key=key,
                session_data=user.session_data,
                expire_date=user.session_expire_date,
            )
        if found is None:
            self._session_key = None
        return found
