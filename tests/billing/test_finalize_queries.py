"""Finalizing costs the same number of queries whatever the size of the invoice or the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import services
from billing.models import Customer, Invoice
from security.models import User
from tests.factories import line

pytestmark = pytest.mark.django_db

MakeInvoice = Callable[..., Invoice]


def _queries(action: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured)


def test_finalizing_one_invoice_costs_the_same_for_one_line_or_twenty(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    small = make_draft_invoice(alice_company, [line()])
    large = make_draft_invoice(alice_company, [line(f"item {i}") for i in range(20)])
    assert _queries(lambda: services.finalize_invoice(small, by=clerk)) == _queries(
        lambda: services.finalize_invoice(large, by=clerk)
    )


def test_a_billing_run_costs_the_same_queries_per_invoice_at_every_size(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    counts = {}
    for size in (2, 4, 8):
        drafts = [make_draft_invoice(alice_company) for _ in range(size)]

        def run(drafts: list[Invoice] = drafts) -> object:
            return services.finalize_invoices(drafts, by=clerk)

        counts[size] = _queries(run)
    per_invoice = (counts[4] - counts[2]) // 2
    assert counts[8] - counts[4] == 4 * per_invoice
    assert counts[2] - 2 * per_invoice == counts[8] - 8 * per_invoice  # a fixed cost per run
