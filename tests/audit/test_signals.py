"""Sign-ins and admin changes are recorded in the chain (framework signals)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.contrib.auth import authenticate, login
from django.contrib.auth.models import Group
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.test import Client, RequestFactory

from audit.models import AuditEvent
from security.models import User
from tests.factories import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


@pytest.fixture
def superuser() -> User:
    user = make_user("root", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def test_a_login_is_recorded_with_the_user_and_address(superuser: User) -> None:
    request = RequestFactory().post(
        "/login/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="pytest-browser"
    )
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)

    login(request, superuser, backend="security.backends.UsernameBackend")

    [event] = _events("auth.login")
    actor = (event.actor_type, event.actor_id, event.actor_label)
    assert actor == ("user", str(superuser.pk), "root")
    assert event.ip == "203.0.113.7"
    assert event.user_agent == "pytest-browser"


def test_a_logout_is_recorded(superuser: User) -> None:
    client = Client()
    client.force_login(superuser)

    client.logout()

    [event] = _events("auth.logout")
    assert event.actor_id == str(superuser.pk)


def test_a_failed_login_records_the_username_and_never_the_password(superuser: User) -> None:
    wrong = "Tr0ub4dor&3-not-it"

    # django-axes (first backend) needs the request to count failures.
    assert authenticate(RequestFactory().post("/"), username="root", password=wrong) is None
    Client().post("/account/login/", {"username": "nobody", "password": wrong})

    events = _events("auth.login_failed")
    assert [e.details for e in events] == [{"username": "root"}, {"username": "nobody"}]
    assert events[0].actor_type == "anonymous"
    for event in AuditEvent.objects.all():
        stored = json.dumps(event.hashed_fields(), default=str)
        assert wrong not in stored
        assert "password" not in stored


def test_admin_additions_changes_and_deletions_are_mirrored(
    superuser: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(superuser)

    assert client.post("/admin/auth/group/add/", {"name": "Clerks"}).status_code == 302
    group = Group.objects.get(name="Clerks")
    changed = client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "Billing clerks"})
    assert changed.status_code == 302
    assert client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 302

    added, change, deleted = (
        _events("admin.added")[0],
        _events("admin.changed")[0],
        _events("admin.deleted")[0],
    )
    for event in (added, change, deleted):
        assert (event.actor_type, event.actor_id) == ("user", str(superuser.pk))
        assert (event.object_type, event.object_id) == ("auth.group", str(group.pk))
        assert event.details["content_type"] == "auth.group"
    assert added.details["object_repr"] == "Clerks"
    assert json.loads(change.details["change_message"]) == [{"changed": {"fields": ["Name"]}}]
    assert deleted.details["object_repr"] == "Billing clerks"


def test_a_bulk_admin_deletion_mirrors_every_log_entry(
    superuser: User, admin_client_for: Callable[[User], Client]
) -> None:
    groups = [Group.objects.create(name=f"Group {n}") for n in range(3)]
    client = admin_client_for(superuser)

    response = client.post(
        "/admin/auth/group/",
        {"action": "delete_selected", "_selected_action": [g.pk for g in groups], "post": "yes"},
    )

    assert response.status_code == 302
    assert sorted(e.object_id for e in _events("admin.deleted")) == sorted(
        str(g.pk) for g in groups
    )
