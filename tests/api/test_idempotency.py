"""Idempotency-Key on POST (security.api.idempotency): replay, mismatch, another endpoint,
concurrent duplicates (two threads, two PostgreSQL connections), failures releasing the
key, and the daily cleanup."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import Application

from security.models import IdempotencyKey
from security.services.idempotency_keys import delete_expired_idempotency_keys
from tests.api import test_infrastructure as views
from tests.api.conftest import bearer, error_of, issue_token
from tests.factories import audit_events

pytestmark = pytest.mark.urls("tests.api.test_infrastructure")


def _post(client: Client, url: str, body: Any, token: str, key: str | None) -> Any:
    extra: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(url, body, content_type="application/json", **bearer(token), **extra)


@pytest.fixture
def write_token(integration: Application) -> str:
    return issue_token(integration, scopes="invoices:write")


@pytest.mark.django_db
def test_a_retry_gets_the_first_answer_again_and_nothing_happens_twice(
    client: Client, write_token: str
) -> None:
    first = _post(client, "/api/v1/test/groups", {"name": "g1"}, write_token, "key-1")
    again = _post(client, "/api/v1/test/groups", {"name": "g1"}, write_token, "key-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Group.objects.filter(name="g1").count() == 1


@pytest.mark.django_db
def test_without_a_key_every_post_acts(client: Client, write_token: str) -> None:
    views.OTHER_CALLS.clear()
    for _ in range(2):
        _post(client, "/api/v1/test/other", {"n": 1}, write_token, None)
    assert len(views.OTHER_CALLS) == 2
    for _ in range(2):
        _post(client, "/api/v1/test/other", {"n": 1}, write_token, "k")
    assert len(views.OTHER_CALLS) == 3


@pytest.mark.django_db
def test_the_same_key_with_other_parameters_is_refused(client: Client, write_token: str) -> None:
    _post(client, "/api/v1/test/groups", {"name": "g1"}, write_token, "key-1")
    response = _post(client, "/api/v1/test/groups", {"name": "g2"}, write_token, "key-1")
    assert response.status_code == 422
    error = error_of(response)
    assert (error["code"], error["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    assert not Group.objects.filter(name="g2").exists()


@pytest.mark.django_db
def test_the_same_key_on_another_endpoint_is_refused(client: Client, write_token: str) -> None:
    _post(client, "/api/v1/test/groups", {"name": "g1"}, write_token, "key-1")
    response = _post(client, "/api/v1/test/other", {"name": "g1"}, write_token, "key-1")
    assert response.status_code == 422
    assert error_of(response)["code"] == "idempotency_key_other_endpoint"


@pytest.mark.django_db
def test_keys_are_per_client(
    client: Client, write_token: str, customer_app: Application, alice: Any
) -> None:
    other = issue_token(customer_app, user=alice, scopes="invoices:write")
    _post(client, "/api/v1/test/groups", {"name": "g1"}, write_token, "key-1")
    response = _post(client, "/api/v1/test/groups", {"name": "g2"}, other, "key-1")
    assert response.status_code == 201
    assert not response.has_header("Idempotent-Replayed")


@pytest.mark.django_db
def test_a_validation_error_is_replayed_too(client: Client, write_token: str) -> None:
    first = _post(client, "/api/v1/test/groups", {"name": ""}, write_token, "key-1")
    again = _post(client, "/api/v1/test/groups", {"name": ""}, write_token, "key-1")
    assert first.status_code == again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "é"])
def test_a_malformed_key_is_refused(client: Client, write_token: str, key: str) -> None:
    response = _post(client, "/api/v1/test/groups", {"name": "g1"}, write_token, key)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_idempotency_key"
    assert not Group.objects.filter(name="g1").exists()


@pytest.mark.django_db
def test_a_failure_on_our_side_releases_the_key(
    client: Client, write_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(views.GroupsView, "post", broken)
    failing = Client(raise_request_exception=False)
    assert (
        _post(failing, "/api/v1/test/groups", {"name": "g1"}, write_token, "k").status_code == 500
    )
    monkeypatch.undo()
    assert _post(client, "/api/v1/test/groups", {"name": "g1"}, write_token, "k").status_code == 201


@pytest.mark.django_db
def test_an_expired_key_is_deleted_by_the_daily_job_and_may_be_used_again(
    client: Client, write_token: str
) -> None:
    _post(client, "/api/v1/test/groups", {"name": "g1"}, write_token, "key-1")
    later = timezone.now() + timedelta(hours=24, minutes=1)
    assert delete_expired_idempotency_keys(now=timezone.now()) == 0
    assert delete_expired_idempotency_keys(now=later) == 1
    assert not IdempotencyKey.objects.exists()
    assert len(audit_events("security.idempotency_keys_purged")) == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_duplicate_sent_while_the_first_runs_is_refused_and_acts_once(
    integration: Application, default_series: None
) -> None:
    token = issue_token(integration, scopes="invoices:write")
    views.HOLD.update(entered=threading.Event(), release=threading.Event())
    answers: dict[str, Any] = {}

    def first() -> None:
        try:
            answers["first"] = _post(
                Client(), "/api/v1/test/slow-groups", {"name": "g"}, token, "k"
            )
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert views.HOLD["entered"].wait(timeout=20)
        duplicate = _post(Client(), "/api/v1/test/slow-groups", {"name": "g"}, token, "k")
        assert duplicate.status_code == 409
        assert error_of(duplicate)["code"] == "idempotency_key_in_use"
    finally:
        views.HOLD["release"].set()
        thread.join(timeout=30)
        views.HOLD.clear()
    assert answers["first"].status_code == 201
    replay = _post(Client(), "/api/v1/test/slow-groups", {"name": "g"}, token, "k")
    assert replay.content == answers["first"].content
    assert Group.objects.filter(name="g").count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_racing_duplicates_create_one_effect(integration: Application) -> None:
    token = issue_token(integration, scopes="invoices:write")
    start = threading.Barrier(2)
    statuses: list[int] = []

    def send() -> None:
        try:
            start.wait(timeout=10)
            response = _post(Client(), "/api/v1/test/groups", {"name": "race"}, token, "k")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) in ([201, 201], [201, 409])
    assert Group.objects.filter(name="race").count() == 1
