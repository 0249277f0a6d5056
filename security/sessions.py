"""The session engine: Django's database sessions, read by a query compiled once.

Every signed-in request reads its session first; the ORM built that query anew
each time. Set as ``SESSION_ENGINE`` (config/settings.py). Storage, expiry and
the session list (``security.models.UserSession``) are Django's and ours as before.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone

from security.compiled import compiled


@compiled(str, datetime.datetime)
def _live_session(session_key: str, now: datetime.datetime) -> Any:
    return SessionStore.get_model_class().objects.filter(
        session_key=session_key, expire_date__gt=now
    )


class SessionStore(DatabaseSessionStore):
    """``_get_session_from_db`` as Django's, by the compiled query."""

    def _get_session_from_db(self) -> Any:
        key = self.session_key
        found = _live_session.first(key, timezone.now()) if isinstance(key, str) else None
        if found is None:
            self._session_key = None
        return found
