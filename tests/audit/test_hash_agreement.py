"""The event hash has one specification (docs/audit.md, "Event fields and the hash") and
two implementations: PostgreSQL's ``audit_append_event``, which hashes an event as it
appends it, and Python's (``audit.chain``), which the verifier and ``record_many`` use.
On random events (unicode everywhere, big numbers, nested JSON, None) they agree."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import SYSTEM, pending_event, record, write_with_event
from audit.chain import event_hash
from audit.models import AuditEvent
from audit.verify import verify_chain
from security.models import User

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]

# Any text PostgreSQL can store: no NUL (a text value cannot hold one), no lone surrogate.
_text = st.text(st.characters(codec="utf-8", blacklist_characters="\x00"), max_size=12)
# Keys no secret-word check refuses (no such word can be spelled from these letters).
_keys = st.text(alphabet="abcdeåäöß名前 -_", min_size=1, max_size=8)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**100), max_value=2**100) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_keys, children, max_size=3),
    max_leaves=10,
)
_actions = st.from_regex(r"\A[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8}){1,2}\Z")
_agreement = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _request(user_agent: str, ip: str | None) -> Any:
    meta: dict[str, Any] = {"HTTP_USER_AGENT": user_agent}
    if ip is not None:
        meta["REMOTE_ADDR"] = ip
    request = RequestFactory().get("/", **meta)
    if ip is None:
        request.META.pop("REMOTE_ADDR", None)
    return request


def _agree(event: AuditEvent) -> None:
    stored = AuditEvent.objects.get(seq=event.seq)
    assert stored.hash == event.hash
    assert event_hash(stored.hashed_fields()) == stored.hash  # Python's dict path
    result = verify_chain()  # the verifier's row path, over the whole chain
    assert result.ok, result.problems[:3]


@_agreement
@given(
    action=_actions,
    user_agent=_text,
    ip=st.none() | st.ip_addresses().map(str),
    details=st.dictionaries(_keys, _json, max_size=4),
)
def test_sql_append_and_python_verifier_agree_on_random_events(
    action: str, user_agent: str, ip: str | None, details: dict[str, Any]
) -> None:
    event = record(action, actor=SYSTEM, request=_request(user_agent, ip), **details)

    _agree(event)


@_agreement
@given(
    object_id=st.integers(min_value=1, max_value=2**63 - 1),
    username=st.text(alphabet="abcåäö名前._-", min_size=1, max_size=20),
    details=st.dictionaries(_keys, _json, max_size=4),
)
def test_an_event_whose_object_id_the_statement_gives_hashes_alike(
    object_id: int, username: str, details: dict[str, Any]
) -> None:
    """``write_with_event``: the object's id comes from the statement, the actor's label
    from a user."""
    actor, _ = User.objects.get_or_create(username=username)
    unsaved = User(username="not-yet")
    pending = pending_event("demo.written", actor=actor, obj=unsaved, **details)

    written = write_with_event("SELECT %s::bigint", [object_id], pending)

    assert written == object_id
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None
    assert (event.object_type, event.object_id) == ("security.user", str(object_id))
    _agree(event)
