"""The invoices API: read (a customer's token sees its own finalized invoices), and the
draft-to-credit-note lifecycle through a server integration, all by billing's services."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Customer, Invoice
from tests.api.conftest import ALL_SCOPES, Api, error_fields
from tests.factories import audit_events, line, table_snapshot

pytestmark = pytest.mark.django_db

LINE = {"description": "Consulting", "quantity": "2", "unit_price": "1000.00", "vat_rate": "25"}


def test_alice_lists_and_reads_her_finalized_invoices_only(
    alice_api: Api,
    alice_company: Customer,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    make_draft_invoice: Callable[..., Invoice],
) -> None:
    mine = make_open_invoice(alice_company)
    make_draft_invoice(alice_company)  # a draft is the seller's, not yet hers
    make_open_invoice(bob_company)

    listed = alice_api.get("invoices")
    detail = alice_api.get(f"invoices/{mine.pk}")

    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [mine.pk]
    assert detail.status_code == 200
    body = detail.json()
    assert body["number"] == mine.display_number
    assert body["gross_total"] == mine.gross_total
    assert body["currency"] == "SEK"
    assert [ln["description"] for ln in body["lines"]] == ["Consulting", "Travel"]
    assert body["lines"][0]["quantity"] == "2.0000"


@pytest.mark.parametrize("route", ["invoices/{pk}", "invoices/{pk}/pdf"], ids=["detail", "pdf"])
def test_bobs_invoice_is_a_404_for_alice(
    alice_api: Api, bob_company: Customer, make_open_invoice: Callable[..., Invoice], route: str
) -> None:
    bobs = make_open_invoice(bob_company)

    assert alice_api.get(route.format(pk=bobs.pk)).status_code == 404


@pytest.mark.parametrize(
    "route",
    [
        "invoices/{pk}/lines",
        "invoices/{pk}/finalize",
        "invoices/{pk}/void",
        "invoices/{pk}/credit-notes",
    ],
)
def test_alice_cannot_change_any_invoice(
    alice_api: Api, alice_company: Customer, make_open_invoice: Callable[..., Invoice], route: str
) -> None:
    mine = make_open_invoice(alice_company)
    before = table_snapshot()

    response = alice_api.post(route.format(pk=mine.pk), {})

    assert response.status_code == 403
    assert table_snapshot() == before


def test_an_integration_creates_a_draft_adds_a_line_and_finalizes_it(
    erp_api: Api, company: Any, alice_company: Customer
) -> None:
    created = erp_api.post(
        "invoices", {"customer": alice_company.pk, "lines": [LINE], "notes": "PO 17"}
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert created.json()["status"] == "draft"

    added = erp_api.post(
        f"invoices/{pk}/lines",
        {"description": "Travel", "quantity": "1", "unit_price": "250.50", "vat_rate": "6"},
    )
    assert added.status_code == 201, added.json()
    assert len(added.json()["lines"]) == 2

    finalized = erp_api.post(f"invoices/{pk}/finalize")
    assert finalized.status_code == 200, finalized.json()
    body = finalized.json()
    assert body["status"] == "open"
    assert body["number"].startswith("F")
    assert body["net_total"] == 225050
    assert body["gross_total"] == 225050 + 50000 + 1503
    invoice = Invoice.objects.get(pk=pk)
    assert audit_events("invoice.finalized", invoice)
    assert audit_events("invoice.line_added", invoice)


def test_void_and_credit_notes(
    erp_api: Api, alice_company: Customer, make_open_invoice: Callable[..., Invoice]
) -> None:
    first, second = make_open_invoice(alice_company), make_open_invoice(alice_company)

    voided = erp_api.post(f"invoices/{first.pk}/void", {"reason": "sent twice"})
    note = erp_api.post(f"invoices/{second.pk}/credit-notes", {"amount": 10000, "currency": "SEK"})

    assert voided.status_code == 200 and voided.json()["status"] == "void"
    assert note.status_code == 201, note.json()
    assert note.json()["kind"] == "credit_note"
    assert note.json()["credited_invoice"] == second.pk
    assert note.json()["gross_total"] == 10000
    second.refresh_from_db()
    assert second.amount_credited == 10000


def test_a_whole_credit_note_by_lines(
    erp_api: Api, alice_company: Customer, make_open_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_open_invoice(alice_company)
    first_line = invoice.lines.order_by("position").first()
    assert first_line is not None

    response = erp_api.post(
        f"invoices/{invoice.pk}/credit-notes",
        {"lines": [{"line": first_line.pk, "quantity": "1"}], "reason": "returned"},
    )

    assert response.status_code == 201, response.json()
    note = response.json()
    assert note["kind"] == "credit_note" and note["credited_invoice"] == invoice.pk
    assert [ln["description"] for ln in note["lines"]] == [first_line.description]
    invoice.refresh_from_db()
    assert invoice.amount_credited == note["gross_total"] > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer": "one"}, "customer"),
        ({"customer": 1, "colour": "red"}, "colour"),
        ({"customer": 1, "currency": "KRONOR"}, "currency"),
        ({"customer": 1, "lines": [{**LINE, "quantity": [2]}]}, "lines[0].quantity"),
        ({"customer": 1, "lines": [{**LINE, "unit_price": "ten"}]}, "lines[0].unit_price"),
        ({"customer": 1, "lines": [{**LINE, "vat_rate": "13"}]}, "vat_rate"),
        ({"customer": 1, "lines": [{**LINE, "discount": "5"}]}, "lines[0].discount"),
        ({"customer": 1, "payment_terms_days": 400}, "payment_terms_days"),
        ({"customer": 999999}, "customer"),
        ({"customer": 1, "currency": "KWD"}, "currency"),
    ],
)
def test_bad_draft_input_names_the_field_and_changes_nothing(
    erp_api: Api, company: Any, alice_company: Customer, body: dict[str, Any], field: str
) -> None:
    if body.get("customer") == 1:
        body = {**body, "customer": alice_company.pk}
    before = table_snapshot()

    response = erp_api.post("invoices", body)

    assert response.status_code == 400, response.json()
    assert field in error_fields(response)
    assert table_snapshot() == before


def test_a_drafts_totals_are_computed_from_its_lines(
    erp_api: Api, company: Any, alice_company: Customer
) -> None:
    # Found from the outside: a draft with lines read back with totals of 0.
    created = erp_api.post("invoices", {"customer": alice_company.pk, "lines": [LINE]})
    assert created.status_code == 201, created.json()

    body = erp_api.get(f"invoices/{created.json()['id']}").json()

    assert body["status"] == "draft"
    assert (body["net_total"], body["vat_total"], body["gross_total"]) == (200000, 50000, 250000)
    assert body["amount_due"] == 250000
    assert body["vat_breakdown"] == [
        {"category": "S", "rate": "25", "taxable_amount": 200000, "vat_amount": 50000}
    ]


@pytest.mark.parametrize(
    ("line_changes", "shown"),
    [({"unit_price": "ten"}, "'ten'"), ({"unit_price": True}, "True")],
    ids=["not-a-number", "a-boolean"],
)
def test_a_bad_number_is_named_in_the_message(
    erp_api: Api,
    company: Any,
    alice_company: Customer,
    line_changes: dict[str, Any],
    shown: str,
) -> None:
    # Found from the outside: the message read "%(value)s is not a number".
    body = {"customer": alice_company.pk, "lines": [{**LINE, **line_changes}]}

    response = erp_api.post("invoices", json.dumps(body), content_type="application/json")

    message = response.json()["error"]["message"]
    assert response.status_code == 400
    assert shown in message and "%(" not in message and "{" not in message


def test_malformed_json_is_refused(erp_api: Api) -> None:
    response = erp_api.post("invoices", '{"customer": ', content_type="application/json")

    assert response.status_code == 400


def test_finalizing_twice_is_refused_naming_the_status(
    erp_api: Api, alice_company: Customer, make_open_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_open_invoice(alice_company)

    response = erp_api.post(f"invoices/{invoice.pk}/finalize")

    assert response.status_code in (400, 409)
    assert "status" in error_fields(response)


@pytest.mark.parametrize(
    ("action", "scope"),
    [
        ("list", "invoices:read"),
        ("create", "invoices:write"),
        ("finalize", "invoices:write"),
    ],
)
def test_each_action_needs_its_scope(
    api_as: Callable[..., Api],
    company: Any,
    alice_company: Customer,
    make_draft_invoice: Callable[..., Invoice],
    action: str,
    scope: str,
) -> None:
    draft = make_draft_invoice(alice_company)
    without = api_as(None, [s for s in ALL_SCOPES if s != scope])
    before = table_snapshot()

    if action == "list":
        response = without.get("invoices")
    elif action == "create":
        response = without.post("invoices", {"customer": alice_company.pk, "lines": [LINE]})
    else:
        response = without.post(f"invoices/{draft.pk}/finalize")

    assert response.status_code == 403
    assert table_snapshot() == before


def test_the_filters_narrow_the_list(
    erp_api: Api,
    alice_company: Customer,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    make_draft_invoice: Callable[..., Invoice],
) -> None:
    open_alice = make_open_invoice(alice_company)
    make_draft_invoice(alice_company)
    make_open_invoice(bob_company, [line()])

    response = erp_api.get("invoices", status="open", customer=alice_company.pk)

    assert [row["id"] for row in response.json()["results"]] == [open_alice.pk]
    assert erp_api.get("invoices", status="opened").status_code == 400


def _line_reads(queries: CaptureQueriesContext) -> int:
    """SELECTs of invoice lines among the captured queries (read before the next request:
    each request empties the connection's query log)."""
    return sum(
        1
        for query in queries.captured_queries
        if query["sql"].startswith("SELECT") and 'FROM "billing_invoiceline"' in query["sql"]
    )


def test_create_and_finalize_answer_with_the_lines_their_services_wrote(
    erp_api: Api, company: Any, alice_company: Customer
) -> None:
    """The answers are those of a fresh read, without reading the lines again: create's
    lines come from ``create_draft_invoice_with_lines``, finalize's from the one read the
    service makes under its lock."""
    body = {"customer": alice_company.pk, "lines": [LINE, {**LINE, "description": "Travel"}]}
    with CaptureQueriesContext(connection) as creating:
        created = erp_api.post("invoices", body)
    lines_read_by_create = _line_reads(creating)
    pk = created.json()["id"]
    assert created.json() == erp_api.get(f"invoices/{pk}").json()

    with CaptureQueriesContext(connection) as finalizing:
        finalized = erp_api.post(f"invoices/{pk}/finalize")
    lines_read_by_finalize = _line_reads(finalizing)

    assert finalized.json() == erp_api.get(f"invoices/{pk}").json()
    assert [ln["quantity"] for ln in created.json()["lines"]] == ["2.0000", "2.0000"]
    assert lines_read_by_create == 0
    assert lines_read_by_finalize == 1
