"""The audit log in the admin: read-only for everyone, filterable, constant queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import SYSTEM, record
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import create_checkpoint
from security.models import User
from tests.factories import make_user

pytestmark = pytest.mark.django_db

EVENTS = "/admin/audit/auditevent/"
CHECKPOINTS = "/admin/audit/auditcheckpoint/"


@pytest.fixture
def superuser() -> User:
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def root_client(superuser: User, admin_client_for: Callable[[User], Client]) -> Client:
    return admin_client_for(superuser)


def _event_seqs(client: Client, query: str = "") -> list[int]:
    response = client.get(EVENTS + query)
    assert response.status_code == 200
    return sorted(event.seq for event in response.context["cl"].result_list)


def test_nobody_can_add_change_or_delete_an_event_in_the_admin(root_client: Client) -> None:
    event = record("demo.kept", actor=SYSTEM, note="original")

    assert root_client.get(EVENTS + "add/").status_code == 403
    change = root_client.post(f"{EVENTS}{event.seq}/change/", {"action": "demo.forged"})
    assert change.status_code == 403
    assert root_client.post(f"{EVENTS}{event.seq}/delete/", {"post": "yes"}).status_code == 403
    bulk = root_client.post(
        EVENTS, {"action": "delete_selected", "_selected_action": [event.seq], "post": "yes"}
    )
    assert bulk.status_code == 200  # the action does not exist: the list is shown again
    assert AuditEvent.objects.get(seq=event.seq).action == "demo.kept"


def test_an_event_can_be_viewed_read_only(root_client: Client) -> None:
    event = record("demo.kept", actor=SYSTEM, note="visible")

    response = root_client.get(f"{EVENTS}{event.seq}/change/")

    assert response.status_code == 200
    assert b"visible" in response.content
    assert b'type="submit" value="Save' not in response.content


def test_the_list_opens_on_the_last_three_months(request: pytest.FixtureRequest) -> None:
    # Recorded before anything else: an event is never given a time before the head's.
    assert not AuditEvent.objects.exists()
    with time_machine.travel(timezone.now() - timedelta(days=120), tick=False):
        old = record("demo.old", actor=SYSTEM)
    root_client: Client = request.getfixturevalue("root_client")
    recent = record("demo.recent", actor=SYSTEM)

    shown = _event_seqs(root_client)
    assert recent.seq in shown
    assert old.seq not in shown
    assert old.seq in _event_seqs(root_client, "?recent=all")
    year = (timezone.now() - timedelta(days=120)).year
    assert old.seq in _event_seqs(root_client, f"?created_at__year={year}")


def test_the_list_filters_by_action_actor_and_object_type(
    root_client: Client, superuser: User, clerk: User
) -> None:
    by_clerk = record("demo.clerk", actor=clerk, obj=superuser)
    by_root = record("demo.root", actor=superuser)
    record("demo.system", actor=SYSTEM)

    assert _event_seqs(root_client, "?action=demo.root") == [by_root.seq]
    assert _event_seqs(root_client, f"?actor=user:{clerk.pk}") == [by_clerk.seq]
    assert _event_seqs(root_client, "?object_type=security.user") == [by_clerk.seq]
    assert _event_seqs(root_client, "?q=clerk") == [by_clerk.seq]


def test_the_event_list_uses_a_constant_number_of_queries(root_client: Client) -> None:
    record("demo.first", actor=SYSTEM)
    root_client.get(EVENTS)  # warm caches (session, content types)
    with CaptureQueriesContext(connection) as few:
        assert root_client.get(EVENTS).status_code == 200

    for index in range(30):
        actor = make_user(f"actor{index}")
        record(f"demo.many_{index % 7}", actor=actor, obj=actor, index=index)
    with CaptureQueriesContext(connection) as many:
        response = root_client.get(EVENTS)

    assert len(response.context["cl"].result_list) == AuditEvent.objects.count() > 31
    assert len(many) == len(few)


def test_the_checkpoint_list_publishes_the_public_key_and_exports(root_client: Client) -> None:
    record("demo.one", actor=SYSTEM)
    checkpoint = create_checkpoint(by=SYSTEM)
    assert checkpoint is not None

    response = root_client.get(CHECKPOINTS)
    export = root_client.get(f"{CHECKPOINTS}{checkpoint.pk}/export/")

    assert response.status_code == 200
    assert checkpoint.public_key.encode() in response.content
    assert b"PRIVATE" not in response.content
    assert export.status_code == 200
    assert export.json()["signature"] == checkpoint.signature
    assert root_client.get(CHECKPOINTS + "add/").status_code == 403
    deleted = root_client.post(f"{CHECKPOINTS}{checkpoint.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert AuditCheckpoint.objects.filter(pk=checkpoint.pk).exists()


def test_staff_without_the_view_permission_cannot_read_the_log(
    clerk: User, admin_client_for: Callable[[User], Client]
) -> None:
    record("demo.hidden", actor=SYSTEM)
    checkpoint_client = admin_client_for(clerk)

    assert checkpoint_client.get(EVENTS).status_code == 403
