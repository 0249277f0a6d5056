"""audit.record_many: many events under one chain lock, each its own verifiable link."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import SYSTEM, AuditEntry, record, record_many
from audit.chain import event_hash
from audit.exceptions import InvalidAuditEvent
from audit.models import AuditEvent
from audit.verify import verify_chain
from security.models import User

pytestmark = pytest.mark.django_db


def test_many_events_link_after_the_head_and_the_chain_verifies() -> None:
    before = record("demo.before", actor=SYSTEM)
    user = User.objects.create_user(username="clerk-many", password="x" * 16)

    events = record_many(
        [
            AuditEntry("demo.first", user, {"index": 0}),
            AuditEntry("demo.second", None, {"index": 1, "nested": {"items": [1, "two"]}}),
            AuditEntry("demo.third"),
        ],
        actor=user,
    )
    after = record("demo.after", actor=SYSTEM)

    assert [e.seq for e in events] == [before.seq + 1, before.seq + 2, before.seq + 3]
    assert events[0].prev_hash == before.hash and after.prev_hash == events[-1].hash
    stored = list(AuditEvent.objects.filter(seq__in=[e.seq for e in events]))
    assert [e.action for e in stored] == ["demo.first", "demo.second", "demo.third"]
    assert (stored[0].object_type, stored[0].object_id) == ("security.user", str(user.pk))
    assert stored[0].actor_label == "clerk-many"
    assert stored[1].details == {"index": 1, "nested": {"items": [1, "two"]}}
    assert all(event_hash(e.hashed_fields()) == e.hash for e in stored)
    result = verify_chain()
    assert result.ok and result.events == 5


@pytest.mark.parametrize(
    "bad",
    [
        AuditEntry("demo.secret", None, {"card_pan": "4111"}),
        AuditEntry("demo.secret", None, {"nested": {"clientSecret": "s"}}),
        AuditEntry("demo.float", None, {"amount": 1.5}),
        AuditEntry("Not A Dotted Name"),
    ],
)
def test_one_bad_entry_writes_none_of_them(bad: AuditEntry) -> None:
    with pytest.raises(InvalidAuditEvent):
        record_many([AuditEntry("demo.good", None, {"n": 1}), bad], actor=SYSTEM)

    assert not AuditEvent.objects.exists()


def test_an_unsaved_object_or_unknown_actor_is_refused() -> None:
    with pytest.raises(InvalidAuditEvent, match="obj"):
        record_many([AuditEntry("demo.unsaved", User(username="x"))], actor=SYSTEM)
    with pytest.raises(InvalidAuditEvent, match="actor"):
        record_many([AuditEntry("demo.nobody")], actor=None)
    assert not AuditEvent.objects.exists()


def test_nothing_to_record_touches_nothing() -> None:
    with CaptureQueriesContext(connection) as queries:
        assert record_many([], actor=SYSTEM) == []
    assert len(queries) == 0


def test_a_rolled_back_batch_leaves_no_trace() -> None:
    first = record("demo.kept", actor=SYSTEM)
    with pytest.raises(RuntimeError), transaction.atomic():
        record_many([AuditEntry("demo.undone"), AuditEntry("demo.undone")], actor=SYSTEM)
        raise RuntimeError("the change failed")

    after = record("demo.next", actor=SYSTEM)

    assert (after.seq, after.prev_hash) == (first.seq + 1, first.hash)
    assert verify_chain().ok


@pytest.mark.parametrize(("size", "round_trips"), [(1, 1), (10, 2), (300, 2)])
def test_the_round_trips_do_not_grow_with_the_number_of_events(size: int, round_trips: int) -> None:
    record("demo.head", actor=SYSTEM)
    entries = [AuditEntry("demo.step", None, {"index": n}) for n in range(size)]

    with CaptureQueriesContext(connection) as queries:
        record_many(entries, actor=SYSTEM)

    # Lock and read the head, then one INSERT (SQLite splits the INSERT by its
    # parameter limit; PostgreSQL does not); one event takes record's one statement.
    if connection.vendor == "postgresql":
        assert len(queries) == round_trips
    assert AuditEvent.objects.count() == size + 1
    assert verify_chain().ok


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_batches_and_single_appends_racing_form_one_gapless_chain() -> None:
    writers = 6
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            start.wait()
            for index in range(10):
                with transaction.atomic():
                    if number % 2:
                        record("demo.single", actor=SYSTEM, writer=number, index=index)
                    else:
                        details = {"writer": number, "index": index}
                        entries: list[Any] = [
                            AuditEntry("demo.batch", None, {**details, "n": n}) for n in range(5)
                        ]
                        record_many(entries, actor=SYSTEM)
        except BaseException as exc:  # reported below; a thread cannot fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 3 * 10 + 3 * 10 * 5 + 1))
    assert verify_chain().ok
