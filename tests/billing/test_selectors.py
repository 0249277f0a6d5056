"""Selectors: who sees which invoice; VAT summaries."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from billing.models import Customer, Invoice
from billing.selectors import get_invoice_for_user, invoice_vat_summary, invoices_for_user
from security.models import User
from tests.factories import line

pytestmark = pytest.mark.django_db

MakeInvoice = Callable[..., Invoice]


def test_alice_sees_her_companys_invoice(
    make_open_invoice: MakeInvoice, alice_company: Customer, alice: User
) -> None:
    invoice = make_open_invoice(alice_company)
    assert get_invoice_for_user(alice, invoice.pk) == invoice


def test_bob_never_sees_alices_invoice(
    make_open_invoice: MakeInvoice, alice_company: Customer, bob: User, outsider: User
) -> None:
    invoice = make_open_invoice(alice_company)
    for user in (bob, outsider, AnonymousUser()):
        with pytest.raises(Http404):
            get_invoice_for_user(user, invoice.pk)
    assert not invoices_for_user(bob).exists()


def test_a_customer_does_not_see_its_drafts(
    make_draft_invoice: MakeInvoice, alice_company: Customer, alice: User
) -> None:
    draft = make_draft_invoice(alice_company)
    with pytest.raises(Http404):
        get_invoice_for_user(alice, draft.pk)


def test_staff_see_every_invoice_and_a_missing_one_is_404(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company)
    assert get_invoice_for_user(clerk, draft.pk) == draft
    for pk in (draft.pk + 1000, "not-a-number"):
        with pytest.raises(Http404):
            get_invoice_for_user(clerk, pk)


def test_the_vat_summary_is_the_frozen_breakdown_once_finalized(
    make_open_invoice: MakeInvoice, make_draft_invoice: MakeInvoice, alice_company: Customer
) -> None:
    specs = [line("A", "1", "100"), line("B", "1", "50", vat_rate="12")]
    draft = make_draft_invoice(alice_company, specs)
    invoice = make_open_invoice(alice_company, specs)
    expected = [("S", Decimal("25"), 10000, 2500), ("S", Decimal("12"), 5000, 600)]
    for document in (draft, invoice):
        summary = invoice_vat_summary(document)
        assert [(g.category, g.rate, g.taxable_amount, g.vat_amount) for g in summary] == expected
