"""The payments operator's, the fraud analyst's and the vault keys' dashboard panels."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from itertools import count
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import SYSTEM
from billing.models import Customer, Invoice
from billing.money import Money
from payments import selectors, services
from payments.dashboard import payments_chart
from payments.fraud import update_risk_settings
from payments.models import BankLine, Payment, PaymentMethod
from payments.reconciliation.sample import sample_camt054
from payments.reconciliation.services import import_bank_file
from security import roles
from security.models import User
from tests.factories import line, make_user, with_role
from tests.payments.fixtures import APPROVED, DECLINED, TIMEOUT, key, sek

pytestmark = pytest.mark.django_db

_files = count(1)


@pytest.fixture
def operator(db: None) -> User:
    return with_role(make_user("petra", is_staff=True), roles.PAYMENTS_OPERATOR)


@pytest.fixture
def fraud_analyst(analyst: User) -> User:
    return analyst


@pytest.fixture
def card_payments(
    analyst: User,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
) -> dict[str, Payment]:
    """One card payment of each outcome the panels count: through, declined, unknown
    (timeout), held for review (above a 500 SEK limit on a new card)."""
    update_risk_settings(
        max_failed_attempts=5,
        new_card_limits={"SEK": 50_000, "EUR": 5_000, "USD": 5_000},
        by=analyst,
    )
    made = {}
    for name, number, amount in (
        ("held", APPROVED, 1000),
        ("ok", "5555555555554444", 200),
        ("unknown", TIMEOUT, 400),
        ("declined", DECLINED, 300),
    ):
        invoice = make_open_invoice(alice_company, [line("Licence", "1", "800.00")])
        made[name] = services.pay_invoice(
            invoice,
            amount=sek(amount),
            payment_method=saved_card(number),
            idempotency_key=key(name),
            by=alice,
        )
    assert made["held"].awaiting_risk_review
    assert made["unknown"].status == Payment.Status.UNKNOWN
    return made


def _bank_file(make_open_invoice: Callable[..., Invoice], customer: Customer, n: int) -> None:
    """``n`` bank transfers paying ``n`` new invoices, and one line with an unknown reference."""
    invoices = [make_open_invoice(customer, [line("Support", "1", "100.00")]) for _ in range(n)]
    credits = [{"amount": "125.00", "reference": i.ocr_reference} for i in invoices]
    credits.append({"amount": "9.00", "reference": "1234567897"})
    number = next(_files)
    import_bank_file(
        sample_camt054(
            credits, message_id=f"DASH-{number}", booking_date=f"{timezone.localdate()}"
        ),
        filename=f"dash-{number}.xml",
        by=SYSTEM,
    )


def test_the_operators_figures_equal_direct_queries(
    card_payments: dict[str, Payment],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    _bank_file(make_open_invoice, alice_company, 2)
    figures = selectors.operator_figures()

    through = Payment.objects.filter(status__in=["succeeded", "partially_refunded", "refunded"])
    assert [(f.currency, f.count, f.amount) for f in figures.captured_today] == [
        ("SEK", through.count(), through.aggregate(s=Sum("amount"))["s"])
    ]
    assert figures.failed_today == Payment.objects.filter(status="failed").count() == 1
    assert figures.unknown == 1
    assert figures.bank_lines_to_resolve == BankLine.objects.filter(status="review").count() == 1
    per_day = selectors.payments_per_day()
    assert per_day[timezone.localdate()] == (through.count(), 1)


def test_the_review_queue_counts_held_payments_by_age(
    card_payments: dict[str, Payment],
) -> None:
    figures = selectors.review_queue_figures()

    assert (figures.waiting, figures.under_an_hour, figures.older) == (1, 1, 0)
    assert [(f.count, f.amount) for f in figures.amounts] == [(1, 100_000)]
    later = selectors.review_queue_figures(now=timezone.now() + datetime.timedelta(days=2))
    assert (later.under_an_hour, later.older) == (0, 1)


def _queries(client: Client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return len(queries), response.content.decode()


@pytest.mark.parametrize("who", ["operator", "fraud_analyst"])
def test_the_panels_run_as_many_queries_with_ten_times_the_payments(
    who: str,
    request: pytest.FixtureRequest,
    card_payments: dict[str, Payment],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    admin_client_for: Callable[[User], Client],
) -> None:
    client = admin_client_for(request.getfixturevalue(who))
    _bank_file(make_open_invoice, alice_company, 2)
    _queries(client)
    before, _page = _queries(client)
    for _ in range(9):
        _bank_file(make_open_invoice, alice_company, 2)
    after, page = _queries(client)

    assert after == before
    assert 'id="panel-operator"' in page if who == "operator" else 'id="panel-review-queue"' in page


def test_the_operator_reads_amounts_in_currency_units_with_a_chart(
    card_payments: dict[str, Payment],
    operator: User,
    admin_client_for: Callable[[User], Client],
) -> None:
    _n, page = _queries(admin_client_for(operator))
    through = selectors.operator_figures().captured_today[0]

    assert str(Money(through.amount, "SEK")) in page
    assert f"{through.amount}" not in page.replace(str(Money(through.amount, "SEK")), "")
    assert "<svg" in page and 'id="panel-review-queue"' not in page


def test_the_chart_draws_a_bar_per_outcome_and_day(card_payments: dict[str, Payment]) -> None:
    chart = str(payments_chart())

    today = timezone.localdate().isoformat()
    assert f"<title>{today}: went through 1</title>" in chart
    assert f"<title>{today}: failed 1</title>" in chart


@pytest.mark.parametrize("role", [roles.BILLING_CLERK, roles.ACCOUNTANT, roles.AUDITOR])
def test_roles_without_the_payments_work_see_neither_panel(
    role: str, admin_client_for: Callable[[User], Client]
) -> None:
    user = with_role(make_user(f"staff-{role[:6]}", is_staff=True), role)
    _n, page = _queries(admin_client_for(user))

    assert 'id="panel-operator"' not in page and 'id="panel-review-queue"' not in page


@pytest.mark.parametrize(
    ("role", "sees"),
    [(roles.SECURITY_OFFICER, True), (roles.AUDITOR, True), (roles.BILLING_CLERK, False)],
)
def test_key_ages_are_shown_to_who_may_read_the_key_status(
    role: str, sees: bool, admin_client_for: Callable[[User], Client]
) -> None:
    user = with_role(make_user(f"keys-{role[:6]}", is_staff=True), role)
    _n, page = _queries(admin_client_for(user))

    assert ('id="panel-key-ages"' in page) is sees


def test_key_ages_show_the_checkpoint_key_and_the_signing_certificate(
    tmp_path: Any, settings: Any
) -> None:
    """The security officer's key-age panel: the audit checkpoint key since its first
    checkpoint and the document signing certificate against its validity, each equal to
    a direct read (the same selectors the quarterly review's key inventory uses)."""
    from django.db.models import Min

    from audit import record
    from audit.keys import current_public_key
    from audit.models import AuditCheckpoint
    from audit.services import create_checkpoint
    from billing.documents import keys

    settings.DOCUMENTS_SIGNING_KEY_FILE = tmp_path / "invoice_signing.p12"
    settings.DOCUMENTS_KEY_PASSPHRASE = "correct horse invoice staple"
    settings.DOCUMENTS_CREATE_KEYS = False
    before = {age.name: age for age in selectors.vault_key_ages()}
    assert before["Document signing certificate"].created_at is None
    keys.create_key_file(common_name="Tillit Demo AB invoices", organisation="Tillit Demo AB")
    record("demo.step", actor=SYSTEM, index=1)
    create_checkpoint(by=SYSTEM)
    record("demo.step", actor=SYSTEM, index=2)
    create_checkpoint(by=SYSTEM)

    ages = {age.name: age for age in selectors.vault_key_ages()}

    public = current_public_key()
    assert public is not None
    first = AuditCheckpoint.objects.filter(key_id=public.key_id).aggregate(m=Min("created_at"))
    checkpoint = ages["Audit checkpoint signing key"]
    assert checkpoint.created_at == first["m"] is not None
    assert checkpoint.cryptoperiod == datetime.timedelta(
        days=settings.GOVERNANCE_AUDIT_KEY_CRYPTOPERIOD_DAYS
    )
    assert not checkpoint.overdue
    identity = keys.load_identity()
    certificate = ages["Document signing certificate"]
    assert certificate.created_at == identity.certificate.not_valid_before_utc
    assert certificate.cryptoperiod == identity.not_valid_after - certificate.created_at
    assert not certificate.overdue
