"""audit.record: appends a chained event, refuses bad input."""

from __future__ import annotations

from typing import Any

import pytest

from audit import SYSTEM, record
from audit.chain import GENESIS_HASH, event_hash
from audit.exceptions import InvalidAuditEvent
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_events_chain_each_hash_to_the_previous_one() -> None:
    first = record("demo.started", actor=SYSTEM, note="one")
    second = record("demo.continued", actor=SYSTEM, count=2)

    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert second.seq == first.seq + 1
    stored = AuditEvent.objects.get(seq=second.seq)
    assert event_hash(stored.hashed_fields()) == stored.hash


@pytest.mark.parametrize("action", ["Invoice.Finalized", "invoice", "invoice..x", "a b.c", ""])
def test_an_action_outside_the_dotted_pattern_is_refused(action: str) -> None:
    with pytest.raises(InvalidAuditEvent, match="action"):
        record(action, actor=SYSTEM)
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "details",
    [
        {"password": "x"},
        {"card_pan": "4111"},
        {"cvc": "123"},
        {"api_token": "t"},
        {"otp_code": "1"},
        {"nested": {"clientSecret": "s"}},
        {"csrftoken": "c"},
    ],
)
def test_a_secret_looking_details_key_is_refused(details: dict[str, Any]) -> None:
    with pytest.raises(InvalidAuditEvent, match="secret"):
        record("demo.secret", actor=SYSTEM, **details)
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("value", [1.5, object(), {1: "x"}, b"bytes"])
def test_details_that_are_not_plain_json_are_refused(value: object) -> None:
    with pytest.raises(InvalidAuditEvent, match="details"):
        record("demo.value", actor=SYSTEM, value=value)
    assert not AuditEvent.objects.exists()


def test_an_unknown_actor_is_refused() -> None:
    with pytest.raises(InvalidAuditEvent, match="actor"):
        record("demo.actor", actor=None)
