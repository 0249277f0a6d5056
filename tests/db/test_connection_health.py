"""The persistent connection's health check: no round trip when idle, and a connection the
server ended is replaced before a request uses it."""

from __future__ import annotations

import select
import time
from typing import Any

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.db.backends.postgresql import base as django_postgresql
from django.test import Client

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _count_select_one(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    asked: list[int] = []
    original = django_postgresql.DatabaseWrapper.is_usable

    def counted(self: Any) -> bool:
        asked.append(1)
        return bool(original(self))

    monkeypatch.setattr(django_postgresql.DatabaseWrapper, "is_usable", counted)
    return asked


def _terminate_backend() -> None:
    """End this connection from the server's side, as a restart or an admin would."""
    pid = connection.connection.info.backend_pid
    settings = connection.get_connection_params()
    with psycopg.connect(**settings, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's goodbye has arrived once the socket is readable.
    select.select([connection.connection.fileno()], [], [], 5)
    time.sleep(0.05)


def test_an_idle_healthy_connection_is_usable_without_select_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection.ensure_connection()
    asked = _count_select_one(monkeypatch)

    assert connection.is_usable()
    assert asked == []


def test_a_connection_the_server_ended_is_not_usable() -> None:
    connection.ensure_connection()

    _terminate_backend()

    assert not connection.is_usable()
    connection.close()


def test_a_request_after_the_server_ended_the_connection_reconnects_and_succeeds() -> None:
    client = Client()
    assert client.get("/account/login/").status_code == 200
    connection.ensure_connection()
    old_pid = connection.connection.info.backend_pid

    _terminate_backend()

    # What the WSGI handler runs as a request starts (Django's test client skips it); the
    # request's first query then checks the connection, closes the dead one and runs on
    # a new one, with no error.
    close_old_connections()
    # A sign-in attempt reads and writes (django-axes records the failure).
    answer = client.post("/account/login/", {"username": "nobody", "password": "wrong-one-1"})
    assert answer.status_code == 200
    assert connection.connection.info.backend_pid != old_pid


def test_when_the_socket_cannot_be_polled_select_1_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection.ensure_connection()
    asked = _count_select_one(monkeypatch)

    def no_poll() -> None:
        raise OSError("poll is not available")

    monkeypatch.setattr("db.postgresql.base.select.poll", no_poll)

    assert connection.is_usable()  # healthy, as SELECT 1 says
    assert asked == [1]
