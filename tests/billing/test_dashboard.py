"""The billing clerk's and the accountant's dashboards on the admin home."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.db.models import F, Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import selectors, services
from billing.models import Customer, Invoice
from billing.money import Money
from security import roles
from security.models import User
from tests.factories import line, make_customer, make_user, with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk_in_role(clerk: User) -> User:
    return with_role(clerk, roles.BILLING_CLERK)


@pytest.fixture
def accountant_in_role(accountant: User) -> User:
    return with_role(accountant, roles.ACCOUNTANT)


def _books(
    make_open_invoice: Callable[..., Invoice],
    make_draft_invoice: Callable[..., Invoice],
    customer: Customer,
    clerk: User,
    *,
    times: int = 1,
) -> None:
    """Per round: a draft, an overdue invoice, one due in 3 days, one paid today, and a
    part credited one (all SEK), plus an overdue EUR invoice."""
    eur = make_customer(f"Euro GmbH {Invoice.objects.count()}", currency="EUR", country="DE")
    today = timezone.localdate()
    for _ in range(times):
        make_draft_invoice(customer)
        with time_machine.travel(timezone.now() - datetime.timedelta(days=40), tick=False):
            make_open_invoice(customer)
            make_open_invoice(eur, [line("Beratung", "1", "100.00")])
        make_open_invoice(customer, payment_terms_days=3)
        paid = make_open_invoice(customer)
        services.record_payment_amount(
            paid, amount=Money(paid.amount_due, "SEK"), by=clerk, reference="bank"
        )
        part = make_open_invoice(customer)
        first = part.lines.order_by("position").first()
        assert first is not None
        services.issue_credit_note(part, by=clerk, lines=[services.CreditLine(first.pk)])
    assert Invoice.objects.filter(due_date__lt=today).exists()


def test_the_clerks_figures_equal_direct_queries(
    make_open_invoice: Callable[..., Invoice],
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
) -> None:
    _books(make_open_invoice, make_draft_invoice, alice_company, clerk)
    today = timezone.localdate()
    figures = selectors.clerk_figures()

    overdue = Invoice.objects.filter(kind="invoice", status="open", due_date__lt=today)
    due = F("gross_total") - F("amount_paid") - F("amount_credited")
    assert figures.drafts == Invoice.objects.filter(status="draft").count() == 1
    per_currency = {c: overdue.filter(currency=c) for c in ("SEK", "EUR")}
    assert {(f.currency, f.count, f.amount) for f in figures.overdue} == {
        (c, rows.count(), rows.aggregate(s=Sum(due))["s"]) for c, rows in per_currency.items()
    }
    week = Invoice.objects.filter(
        status="open", due_date__gte=today, due_date__lt=today + datetime.timedelta(days=7)
    )
    assert [(f.count, f.amount) for f in figures.due_this_week] == [
        (week.count(), week.aggregate(s=Sum(due))["s"])
    ]
    paid = Invoice.objects.get(kind="invoice", status="paid")
    assert [(f.count, f.amount) for f in figures.paid_today] == [(1, paid.amount_paid)]


def test_the_accountants_period_nets_credit_notes_and_splits_vat_per_rate(
    make_open_invoice: Callable[..., Invoice],
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
) -> None:
    _books(make_open_invoice, make_draft_invoice, alice_company, clerk)
    start, end = selectors.month_bounds(timezone.localdate())
    figures = selectors.period_figures(start, end)

    issued = Invoice.objects.exclude(status__in=["draft", "void"]).filter(
        issue_date__gte=start, issue_date__lt=end, currency="SEK"
    )
    invoiced = issued.filter(kind="invoice").aggregate(s=Sum("gross_total"))["s"]
    credited = issued.filter(kind="credit_note").aggregate(s=Sum("gross_total"))["s"] or 0
    sek = next(f for f in figures.totals if f.currency == "SEK")
    assert sek.amount == invoiced - credited
    vat_25 = next(v for v in figures.vat if v.currency == "SEK" and v.rate == Decimal(25))
    expected = sum(
        (-1 if inv.kind == "credit_note" else 1) * int(g["vat_amount"])
        for inv in issued
        for g in inv.vat_breakdown
        if Decimal(g["rate"]) == 25
    )
    assert vat_25.vat_amount == expected


def _dashboard_queries(client: Client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return len(queries), response.content.decode()


@pytest.mark.parametrize("who", ["clerk", "accountant"])
def test_the_dashboard_runs_as_many_queries_with_ten_times_the_data(
    who: str,
    make_open_invoice: Callable[..., Invoice],
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk_in_role: User,
    accountant_in_role: User,
    admin_client_for: Callable[[User], Client],
) -> None:
    client = admin_client_for(clerk_in_role if who == "clerk" else accountant_in_role)
    _books(make_open_invoice, make_draft_invoice, alice_company, clerk_in_role)
    _dashboard_queries(client)  # the session's first request reads what later ones keep
    before, _page = _dashboard_queries(client)
    _books(make_open_invoice, make_draft_invoice, alice_company, clerk_in_role, times=9)
    after, _page = _dashboard_queries(client)

    assert after == before


def test_the_clerk_sees_her_queue_in_currency_units_and_not_the_books(
    make_open_invoice: Callable[..., Invoice],
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk_in_role: User,
    admin_client_for: Callable[[User], Client],
) -> None:
    _books(make_open_invoice, make_draft_invoice, alice_company, clerk_in_role)
    _n, page = _dashboard_queries(admin_client_for(clerk_in_role))
    overdue = selectors.clerk_figures().overdue

    assert 'id="panel-clerk"' in page and 'id="panel-accountant"' not in page
    for figure in overdue:
        assert str(Money(figure.amount, figure.currency)) in page
        assert f">{figure.amount}<" not in page


def test_the_accountant_is_led_to_export_and_verify(
    accountant_in_role: User, admin_client_for: Callable[[User], Client]
) -> None:
    _n, page = _dashboard_queries(admin_client_for(accountant_in_role))

    assert 'id="panel-accountant"' in page and 'id="panel-clerk"' not in page
    assert reverse("documents:export") in page and reverse("documents:verify") in page


@pytest.mark.parametrize(
    "role", [roles.PAYMENTS_OPERATOR, roles.FRAUD_ANALYST, roles.SECURITY_OFFICER]
)
def test_other_roles_see_neither_billing_panel(
    role: str, admin_client_for: Callable[[User], Client]
) -> None:
    user = with_role(make_user(f"someone-{role[:5]}", is_staff=True), role)
    _n, page = _dashboard_queries(admin_client_for(user))

    assert 'id="panel-clerk"' not in page and 'id="panel-accountant"' not in page
