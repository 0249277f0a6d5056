"""Portal clients: Alice and Bob signed in to the portal (password only, no second factor)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from security.models import User


@pytest.fixture
def portal_client_for() -> Callable[[User], Client]:
    """``portal_client_for(user)``: a client signed in as the user (no second factor enrolled)."""

    def login(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return login
