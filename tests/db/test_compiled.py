"""Compiled queries (db.compiled) build what the queryset would, deferred fields included."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from db.compiled import CompiledQuery
from security.models import User

pytestmark = pytest.mark.django_db


def _user_without_names(pk: int) -> Any:
    return User.objects.filter(pk=pk).defer("first_name", "last_name")


def test_a_deferred_field_is_left_out_and_read_on_first_access() -> None:
    user = User.objects.create_user(
        username="ada", email="ada@example.com", first_name="Ada", last_name="Lovelace"
    )
    query = CompiledQuery(_user_without_names, int)

    found = query.first(user.pk)

    assert found.get_deferred_fields() == {"first_name", "last_name"}
    assert (found.pk, found.username, found.email) == (user.pk, "ada", "ada@example.com")
    with CaptureQueriesContext(connection) as reads:
        assert found.first_name == "Ada"
    assert len(reads) == 1
    assert found.get_deferred_fields() == {"last_name"}
