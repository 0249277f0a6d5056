"""Reads about API clients and tokens."""

from __future__ import annotations

from oauth2_provider.models import Application


def api_client_named(client_id: str) -> Application | None:
    """The registered client with this client id, or None."""
    if not client_id:
        return None
    return Application.objects.filter(client_id=client_id).first()
