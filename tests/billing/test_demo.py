"""manage.py seed_demo: every invoice state, valid numbers, one login per role, idempotent."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.utils import timezone
from stdnum.eu import vat as eu_vat

from audit.models import AuditEvent
from billing import demo
from billing.delivery import pgp
from billing.documents import keys
from billing.models import CompanyProfile, Customer, Invoice, PortalAccount
from security.models import User

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_settings")]


def _counts() -> dict[str, int]:
    counted = {
        model._meta.label: model._default_manager.count()
        for app in ("billing", "payments", "security", "audit", "auth")
        for model in apps.get_app_config(app).get_models()
    }
    counted["group memberships"] = User.groups.through.objects.count()
    return counted


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seeding_twice_changes_nothing_the_second_time() -> None:
    _seed()
    after_first = _counts()
    last_event = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()

    _seed()

    assert _counts() == after_first
    assert AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first() == last_event
    assert after_first["billing.Invoice"] >= 30


def test_the_demo_has_invoices_in_every_state_and_a_credit_note() -> None:
    _seed()
    invoices = Invoice.objects.invoices()
    today = timezone.localdate()

    assert invoices.filter(status=Invoice.Status.DRAFT).exists()
    assert invoices.filter(status=Invoice.Status.OPEN, due_date__gte=today).exists()
    assert invoices.overdue(today).exists()
    assert invoices.filter(status=Invoice.Status.OPEN, amount_paid__gt=0).exists()
    assert invoices.filter(status=Invoice.Status.PAID, amount_paid__gt=0).exists()
    assert invoices.filter(status=Invoice.Status.VOID).exists()
    assert invoices.filter(status=Invoice.Status.UNCOLLECTIBLE).exists()
    assert Invoice.objects.credit_notes().exclude(status=Invoice.Status.DRAFT).count() >= 1
    finalized = list(invoices.finalized().order_by("number"))
    dates = [invoice.issue_date or today for invoice in finalized]
    assert dates == sorted(dates), "numbers follow issue dates"


def test_the_demo_company_and_customers_carry_valid_numbers() -> None:
    _seed()
    company = CompanyProfile.objects.get()
    assert company.bankgiro and company.iban and company.f_skatt_text == "Godkänd för F-skatt"
    assert eu_vat.is_valid(company.vat_number)

    customers = list(Customer.objects.all())
    assert {c.country for c in customers} >= {"SE", "DE", "FI", "DK"}
    assert {c.kind for c in customers} == {Customer.Kind.COMPANY, Customer.Kind.PERSON}
    for customer in customers:
        customer.full_clean()  # runs python-stdnum on identity numbers and VAT ids
        if customer.vat_id:
            assert eu_vat.is_valid(customer.vat_id), customer.vat_id


def test_the_demo_has_one_staff_login_per_role_and_a_portal_login() -> None:
    _seed()
    staff = User.objects.filter(is_staff=True)
    assert sorted(staff.values_list("username", flat=True)) == sorted(
        username for username, *_ in demo.STAFF
    )
    assert all(user.check_password(demo.DEMO_PASSWORD) for user in staff)
    assert not staff.filter(is_superuser=True).exists()
    account = PortalAccount.objects.select_related("user", "customer").get()
    assert not account.user.is_staff
    assert account.user.check_password(demo.DEMO_PASSWORD)


def test_seed_demo_prints_every_login_and_says_it_is_for_the_demo_only() -> None:
    output = _seed()

    assert "DEMO ONLY" in output
    # The keys the portal's security page shows, made by the seed, not on first use.
    assert f"Company PGP key: {pgp.existing_company_key_fingerprint()}" in output
    assert f"(SHA-256): {keys.load_identity().fingerprint}" in output
    for username, role, *_ in demo.STAFF:
        assert any(username in line and role in line for line in output.splitlines())
    assert demo.DEMO_PASSWORD in output


def test_the_demo_staff_hold_exactly_their_role() -> None:
    _seed()
    for username, role, *_ in [*demo.STAFF, demo.PORTAL_USER]:
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role]


def test_seed_demo_refuses_to_run_in_production(settings: Any) -> None:
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        _seed()
    assert not Invoice.objects.exists()
    assert not User.objects.exists()


def test_the_login_table_grows_a_column_for_each_extra_detail() -> None:
    table = demo.format_logins(
        [
            demo.DemoLogin("clerk", "Billing clerk", "/admin/", "c@example.test"),
            demo.DemoLogin(
                "auditor", "Auditor", "/admin/", "a@example.test", extra={"TOTP key": "demo-key"}
            ),
        ]
    )
    header = table.splitlines()[1]
    assert header.split()[-2:] == ["TOTP", "key"]
    assert "demo-key" in table


@pytest.mark.parametrize(
    ("make", "valid"),
    [
        (lambda: demo.swedish_organisation_number("556677123"), "556677-1233"),
        (lambda: demo.swedish_personal_number("850412", "982"), "850412-9829"),
        (lambda: demo.german_vat_number("81234567"), "DE812345673"),
        (lambda: demo.finnish_business_id("2346781"), "2346781-8"),
        (lambda: demo.danish_cvr_number("2987654"), "29876541"),
        (lambda: demo.bankgiro_number("505105"), "505-1057"),
    ],
)
def test_demo_numbers_get_their_check_digits(make: object, valid: str) -> None:
    assert callable(make)
    assert make() == valid


def test_the_demo_has_a_delivery_that_failed_for_the_clerk() -> None:
    from billing.delivery.models import Delivery
    from billing.delivery.selectors import failed_delivery_count

    _seed()

    failed = Delivery.objects.get(status=Delivery.Status.FAILED)
    assert "PGP key is gone" in failed.last_error
    assert failed_delivery_count() == 1
