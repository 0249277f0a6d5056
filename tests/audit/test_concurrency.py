"""Concurrent writers on PostgreSQL never fork the chain."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from audit import SYSTEM, record
from audit.chain import GENESIS_HASH
from audit.models import AuditEvent
from audit.verify import verify_chain

WRITERS = 8
APPENDS_EACH = 25


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_gapless_chain() -> None:
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            start.wait()
            for index in range(APPENDS_EACH):
                record("demo.concurrent", actor=SYSTEM, writer=number, index=index)
        except BaseException as exc:  # reported below; a thread cannot fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    rows = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))
    assert [seq for seq, _, _ in rows] == list(range(1, WRITERS * APPENDS_EACH + 1))
    previous = GENESIS_HASH
    for _, prev_hash, hash_ in rows:
        assert prev_hash == previous
        previous = hash_
    assert verify_chain().ok
