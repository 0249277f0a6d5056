"""audit.record: appends a chained event, refuses bad input."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from audit import SYSTEM, pending_event, record, write_with_event
from audit.chain import (
    GENESIS_HASH,
    SEQ_OPEN,
    canonical_details,
    canonical_time,
    event_hash,
    hashed_parts,
    json_inside,
    row_hash,
)
from audit.exceptions import InvalidAuditEvent
from audit.models import AuditEvent
from audit.services import append_prepared, prepare_event
from audit.verify import verify_chain
from db.compiled import insert_sql
from security.models import User

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
        {"items": [{"cardNumber": "4111"}]},
        {"newPassword": "x"},
        {"PIN": "1234"},
    ],
)
def test_a_secret_looking_details_key_is_refused(details: dict[str, Any]) -> None:
    with pytest.raises(InvalidAuditEvent, match="secret"):
        record("demo.secret", actor=SYSTEM, **details)
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "value",
    [1.5, float("nan"), Decimal("9.99"), object(), {1: "x"}, b"bytes", [{"ok": 1.0}], date.today()],
)
def test_details_that_are_not_plain_json_are_refused(value: object) -> None:
    with pytest.raises(InvalidAuditEvent, match="details"):
        record("demo.value", actor=SYSTEM, value=value)
    assert not AuditEvent.objects.exists()


def test_an_unknown_actor_is_refused() -> None:
    with pytest.raises(InvalidAuditEvent, match="actor"):
        record("demo.actor", actor=None)


def test_an_append_rolled_back_with_its_change_leaves_no_trace_in_the_chain() -> None:
    first = record("demo.kept", actor=SYSTEM)
    with pytest.raises(RuntimeError), transaction.atomic():
        record("demo.undone", actor=SYSTEM)
        raise RuntimeError("the change failed")

    after = record("demo.next", actor=SYSTEM)

    assert (after.seq, after.prev_hash) == (first.seq + 1, first.hash)
    assert not AuditEvent.objects.filter(action="demo.undone").exists()
    assert verify_chain().ok


@pytest.mark.parametrize(
    ("remote_addr", "stored"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("not-an-address", None),
    ],
)
def test_the_client_address_is_stored_as_hashed(remote_addr: str, stored: str | None) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR=remote_addr)

    event = record("demo.request", actor=SYSTEM, request=request)

    assert AuditEvent.objects.get(seq=event.seq).ip == stored
    assert verify_chain().ok


_text = st.text(max_size=20)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@given(
    seq=st.integers(min_value=1, max_value=2**62),
    labels=st.lists(_text, min_size=7, max_size=7),
    ip=st.none() | st.ip_addresses().map(str),
    details=st.dictionaries(st.text(max_size=8), _json, max_size=4),
)
def test_the_verifiers_fast_hash_equals_the_canonical_hash(
    seq: int, labels: list[str], ip: str | None, details: dict[str, Any]
) -> None:
    moment = datetime(2026, 10, 15, 9, 30, 1, 123456, tzinfo=UTC)
    actor_type, actor_id, actor_label, action, object_type, object_id, user_agent = labels
    fields = {
        "seq": seq,
        "created_at": moment,
        "actor_type": actor_type,
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "ip": ip,
        "user_agent": user_agent,
        "details": details,
        "prev_hash": GENESIS_HASH,
    }
    details_text = json.dumps(details)  # as the database gives it back: not canonical

    fast = row_hash(
        seq,
        canonical_time(moment),
        actor_type,
        actor_id,
        actor_label,
        action,
        object_type,
        object_id,
        ip,
        user_agent,
        canonical_details(details_text),
        GENESIS_HASH,
    )

    assert fast == event_hash(fields)


def test_an_overlong_action_is_refused() -> None:
    with pytest.raises(InvalidAuditEvent, match="action"):
        record("demo." + "x" * 100, actor=SYSTEM)
    assert not AuditEvent.objects.exists()


def test_an_unsaved_object_is_refused() -> None:
    with pytest.raises(InvalidAuditEvent, match="obj"):
        record("demo.unsaved", actor=SYSTEM, obj=AuditEvent())
    assert not AuditEvent.objects.exists()


def test_harmless_keys_that_contain_secret_words_as_parts_are_kept() -> None:
    event = record("demo.ok", actor=SYSTEM, company_name="ACME", spin_count=2, key_id="abc")
    assert event.details == {"company_name": "ACME", "spin_count": 2, "key_id": "abc"}


@given(
    object_id=st.text(max_size=12),
    label=st.text(max_size=30),
    details=st.dictionaries(st.sampled_from(["a", "é", "n"]), st.text(max_size=10), max_size=3),
)
def test_the_pieces_around_time_object_id_and_head_join_to_the_canonical_json(
    object_id: str, label: str, details: dict[str, str]
) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    fields = {
        "seq": 7,
        "created_at": moment,
        "actor_type": "user",
        "actor_id": "1",
        "actor_label": label,
        "action": "demo.split",
        "object_type": "demo.thing",
        "object_id": object_id,
        "ip": None,
        "user_agent": "",
        "details": details,
        "prev_hash": "ab" * 32,
    }
    p0, p1, p2, p3 = hashed_parts(
        "user",
        "1",
        label,
        "demo.split",
        "demo.thing",
        None,
        "",
        canonical_details(json.dumps(details)),
    )
    text = f"{p0}{canonical_time(moment)}{p1}{json_inside(object_id)}{p2}{'ab' * 32}{SEQ_OPEN}7{p3}"

    assert hashlib.sha256(text.encode()).hexdigest() == event_hash(fields)


@pytest.mark.postgres_only
def test_an_event_asked_for_at_an_earlier_time_takes_the_heads_time() -> None:
    head = record("demo.now", actor=SYSTEM)
    prepared = prepare_event(
        "demo.late", actor=SYSTEM, object_type="", object_id="", request=None, details={}
    )
    late = append_prepared(replace(prepared, created_at=head.created_at - timedelta(hours=1)), "")

    stored = AuditEvent.objects.get(seq=late.seq)
    assert stored.created_at == head.created_at == late.created_at
    assert event_hash(stored.hashed_fields()) == stored.hash
    assert verify_chain().ok


def test_an_event_written_with_a_row_in_one_statement_takes_the_rows_id_and_chains() -> None:
    record("demo.before", actor=SYSTEM)
    user = User(username="asa", email="asa@example.com", password="!")
    pending = pending_event("demo.together", actor=SYSTEM, obj=user, name="Åsa <b>")

    row_id = write_with_event(*insert_sql(user), pending)
    record("demo.after", actor=SYSTEM)

    stored = AuditEvent.objects.get(action="demo.together")
    assert User.objects.filter(pk=row_id, username="asa").exists()
    assert (stored.object_id, stored.object_type) == (str(row_id), "security.user")
    assert stored.details == {"name": "Åsa <b>"}
    assert event_hash(stored.hashed_fields()) == stored.hash
    assert stored.prev_hash == AuditEvent.objects.get(seq=stored.seq - 1).hash
    assert verify_chain().ok


def test_a_write_that_changes_no_row_appends_no_event() -> None:
    user = User.objects.create_user(username="bo")
    pending = pending_event("demo.nothing", actor=SYSTEM, obj=user)

    sql = 'UPDATE "security_user" SET "email" = %s WHERE "id" = %s RETURNING "id"'
    assert write_with_event(sql, ["bo@example.com", -1], pending) is None

    assert not AuditEvent.objects.filter(action="demo.nothing").exists()


def test_a_pending_event_is_checked_before_anything_is_written() -> None:
    with pytest.raises(InvalidAuditEvent, match="password"):
        pending_event("demo.secret", actor=SYSTEM, obj=User(username="cy"), password="x")
    assert not AuditEvent.objects.exists()
