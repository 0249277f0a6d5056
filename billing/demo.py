"""Demo data for the zero-setup demo (``manage.py seed_demo``).

A Swedish seller, Swedish and EU customers with valid identity numbers, about
thirty invoices in every state (draft, open, overdue, partly paid, paid, void,
uncollectible, credited) and one staff login per role, plus one portal login.
Everything billing goes through ``billing.services``, so the demo carries the
same numbers, snapshots and audit trail a real installation would.

Idempotent: each company, customer, invoice and user is looked up first and
made only if missing, so a second run changes nothing.

The identity numbers are fictional but valid: their check digits are computed
here with python-stdnum's algorithms, not copied from real businesses.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone
from stdnum import iban, luhn
from stdnum.dk import cvr
from stdnum.eu import vat as eu_vat
from stdnum.fi import ytunnus
from stdnum.iso7064 import mod_11_10
from stdnum.se import orgnr, personnummer

from audit import SYSTEM, record
from billing import selectors, services
from billing.demo_delivery import seed_failed_delivery
from billing.models import Customer, Invoice
from billing.money import Money
from security import roles
from security.services import ensure_demo_second_factor, set_user_roles, sync_roles

DEMO_PASSWORD = "Tillit-demo-2026"  # noqa: S105 - printed on purpose: demo logins only
"""The password of every demo login. Demo only: never run seed_demo in production."""

DEMO_EMAIL_DOMAIN = "demo.tillit.example"


# --- valid identity numbers -------------------------------------------------------------


def swedish_organisation_number(first_nine: str) -> str:
    """NNNNNN-NNNC with its Luhn check digit (an aktiebolag starts with 55)."""
    number = first_nine + luhn.calc_check_digit(first_nine)
    return str(orgnr.format(orgnr.validate(number)))


def swedish_personal_number(birth_date: str, serial: str) -> str:
    """YYMMDD-NNNC with its Luhn check digit."""
    digits = birth_date + serial
    return str(personnummer.format(personnummer.validate(digits + luhn.calc_check_digit(digits))))


def swedish_vat_number(organisation_number: str) -> str:
    """SE + the organisation number + 01, as Skatteverket issues them."""
    return "SE" + organisation_number.replace("-", "") + "01"


def german_vat_number(first_eight: str) -> str:
    """DE + 8 digits + the ISO 7064 MOD 11,10 check digit."""
    return str(eu_vat.validate("DE" + first_eight + mod_11_10.calc_check_digit(first_eight)))


def finnish_business_id(first_seven: str) -> str:
    """Y-tunnus NNNNNNN-C (weights 7,9,10,5,8,4,2; modulus 11)."""
    remainder = sum(w * int(d) for w, d in zip((7, 9, 10, 5, 8, 4, 2), first_seven, strict=True))
    check = (11 - remainder % 11) % 11
    if check == 10:
        raise ValueError(f"{first_seven} has no valid Finnish check digit; pick another")
    return str(ytunnus.format(ytunnus.validate(f"{first_seven}-{check}")))


def danish_cvr_number(first_seven: str) -> str:
    """CVR: 8 digits whose weighted sum (2,7,6,5,4,3,2,1) is divisible by 11."""
    remainder = sum(w * int(d) for w, d in zip((2, 7, 6, 5, 4, 3, 2), first_seven, strict=True))
    check = (11 - remainder % 11) % 11
    if check == 10:
        raise ValueError(f"{first_seven} has no valid Danish check digit; pick another")
    return str(cvr.validate(first_seven + str(check)))


def bankgiro_number(first_digits: str) -> str:
    """A bankgiro number (7 or 8 digits, Luhn) in its printed form NNN-NNNN / NNNN-NNNN."""
    number = first_digits + luhn.calc_check_digit(first_digits)
    return f"{number[:-4]}-{number[-4:]}"


def swedish_iban(bban: str) -> str:
    """SE + ISO 7064 MOD 97-10 check digits + the 20-digit BBAN, grouped by four."""
    number = "SE" + iban.calc_check_digits("SE00" + bban) + bban
    return str(iban.format(iban.validate(number)))


# --- what the demo holds ------------------------------------------------------------------

SELLER_ORGANISATION_NUMBER = swedish_organisation_number("559214561")

COMPANY: dict[str, Any] = {
    "legal_name": "Solbacka Systemutveckling AB",
    "organisation_number": SELLER_ORGANISATION_NUMBER,
    "vat_number": swedish_vat_number(SELLER_ORGANISATION_NUMBER),
    "address_line1": "Drottninggatan 42",
    "address_line2": "",
    "postal_code": "111 21",
    "city": "Stockholm",
    "country": "SE",
    "email": f"faktura@{DEMO_EMAIL_DOMAIN}",
    "phone": "+46 8 555 012 34",
    "bankgiro": bankgiro_number("505105"),
    "iban": swedish_iban("50000000058398257466"),
    "bic": "ESSESESS",
    "f_skatt_text": "Godkänd för F-skatt",
    "default_payment_terms_days": 30,
}


def _sweden(name: str, number: str, email: str, **extra: Any) -> dict[str, Any]:
    values = {
        "name": name,
        "kind": Customer.Kind.COMPANY,
        "identity_number": number,
        "vat_id": swedish_vat_number(number),
        "email": email,
        "country": "SE",
        "language": "sv",
        "currency": "SEK",
    }
    values.update(extra)
    return values


_NORDLJUS = swedish_organisation_number("556677123")
_FJALLBACKA = swedish_organisation_number("556812345")
_KVARNBY = swedish_organisation_number("559012345")

CUSTOMERS: list[dict[str, Any]] = [
    _sweden(
        "Nordljus Arkitekter AB",
        _NORDLJUS,
        "ekonomi@nordljus.example",
        address_line1="Västra Hamngatan 11",
        postal_code="411 17",
        city="Göteborg",
    ),
    _sweden(
        "Fjällbacka Bageri AB",
        _FJALLBACKA,
        "faktura@fjallbackabageri.example",
        address_line1="Ingrid Bergmans torg 3",
        postal_code="450 71",
        city="Fjällbacka",
        payment_terms_days=15,
    ),
    _sweden(
        "Kvarnby Konsult AB",
        _KVARNBY,
        "reskontra@kvarnby.example",
        address_line1="Stortorget 8",
        postal_code="211 34",
        city="Malmö",
    ),
    {
        "name": "Astrid Lindqvist",
        "kind": Customer.Kind.PERSON,
        "identity_number": swedish_personal_number("850412", "982"),
        "email": "astrid.lindqvist@example.se",
        "address_line1": "Storgatan 5",
        "postal_code": "903 26",
        "city": "Umeå",
        "country": "SE",
        "language": "sv",
        "currency": "SEK",
    },
    {
        "name": "Erik Johansson",
        "kind": Customer.Kind.PERSON,
        "identity_number": swedish_personal_number("721103", "983"),
        "email": "erik.johansson@example.se",
        "address_line1": "Kungsgatan 17",
        "postal_code": "753 21",
        "city": "Uppsala",
        "country": "SE",
        "language": "sv",
        "currency": "SEK",
    },
    {
        "name": "Rheinwerk Maschinenbau GmbH",
        "kind": Customer.Kind.COMPANY,
        "vat_id": german_vat_number("81234567"),
        "email": "rechnungen@rheinwerk.example",
        "address_line1": "Rheinuferstraße 21",
        "postal_code": "50668",
        "city": "Köln",
        "country": "DE",
        "language": "en",
        "currency": "EUR",
    },
    {
        "name": "Saimaa Software Oy",
        "kind": Customer.Kind.COMPANY,
        "identity_number": finnish_business_id("2346781"),
        "vat_id": "FI" + finnish_business_id("2346781").replace("-", ""),
        "email": "laskut@saimaa.example",
        "address_line1": "Kauppakatu 9",
        "postal_code": "53100",
        "city": "Lappeenranta",
        "country": "FI",
        "language": "en",
        "currency": "EUR",
    },
    {
        "name": "Øresund Logistik ApS",
        "kind": Customer.Kind.COMPANY,
        "identity_number": danish_cvr_number("2987654"),
        "vat_id": "DK" + danish_cvr_number("2987654"),
        "email": "faktura@oresundlogistik.example",
        "address_line1": "Havnegade 39",
        "postal_code": "1058",
        "city": "København K",
        "country": "DK",
        "language": "en",
        "currency": "DKK",
    },
]

# Lines by kind of customer: Swedish buyers pay Swedish VAT; EU businesses buy
# services under reverse charge (AE, 0 %).
_SE_LINES = [
    {"description": "Systemutveckling", "quantity": "12", "unit": "h", "unit_price": "1250.00"},
    {"description": "Projektledning", "quantity": "4.5", "unit": "h", "unit_price": "1100.00"},
    {"description": "Driftavtal, månad", "quantity": "1", "unit": "mån", "unit_price": "3900.00"},
    {"description": "Kodgranskning", "quantity": "6", "unit": "h", "unit_price": "1250.00"},
    {"description": "Licens Tillit Pro", "quantity": "3", "unit": "st", "unit_price": "499.00"},
]
_PERSON_LINES = [
    {"description": "Datorsupport på plats", "quantity": "2", "unit": "h", "unit_price": "650.00"},
    {
        "description": "Installation av router",
        "quantity": "1",
        "unit": "st",
        "unit_price": "890.00",
    },
    {
        "description": "Facklitteratur: Säker kod",
        "quantity": "1",
        "unit": "st",
        "unit_price": "349.00",
    },
]
_EU_LINES = [
    {"description": "Software development", "quantity": "10", "unit": "h", "unit_price": "115.00"},
    {"description": "Security review", "quantity": "3", "unit": "h", "unit_price": "140.00"},
    {"description": "Hosting, monthly", "quantity": "1", "unit": "mo", "unit_price": "350.00"},
]


def _lines_for(customer: Customer, variant: int) -> list[dict[str, Any]]:
    if customer.country != "SE":
        catalogue, category, rate = _EU_LINES, "AE", "0"
    elif customer.kind == Customer.Kind.PERSON:
        catalogue, category, rate = _PERSON_LINES, "S", "25"
    else:
        catalogue, category, rate = _SE_LINES, "S", "25"
    count = 1 + variant % len(catalogue)
    chosen = [catalogue[(variant + i) % len(catalogue)] for i in range(count)]
    lines = []
    for spec in chosen:
        vat_category, vat_rate = category, rate
        if spec["description"].startswith("Facklitteratur"):
            vat_rate = "6"  # books: the reduced Swedish rate
        lines.append(
            {
                "description": spec["description"],
                "quantity": Decimal(spec["quantity"]),
                "unit": spec["unit"],
                "unit_price": Decimal(spec["unit_price"]),
                "vat_category": vat_category,
                "vat_rate": Decimal(vat_rate),
            }
        )
    return lines


@dataclass(frozen=True)
class InvoicePlan:
    """One demo invoice: who, how long ago it was issued, and where it ends up.

    ``outcome`` is one of draft, open, paid, partly_paid, void, uncollectible,
    credited (in full), part_credited or bank_transfer (left open for the payments
    demo's bank files to pay). ``key`` is written into the notes and
    identifies the invoice on a second run.
    """

    key: str
    customer: str
    days_ago: int
    outcome: str
    terms: int | None = None
    variant: int = 0


def _plans() -> list[InvoicePlan]:
    names = [c["name"] for c in CUSTOMERS]
    # (outcome, days ago issued) spread over the last five months; "open" invoices
    # issued more than their terms ago are the overdue ones.
    layout = [
        ("paid", 150),
        ("paid", 140),
        ("credited", 132),
        ("paid", 120),
        ("uncollectible", 115),
        ("paid", 105),
        ("void", 98),
        ("open", 90),  # overdue
        ("paid", 84),
        ("partly_paid", 76),  # overdue and partly paid
        ("open", 70),  # overdue
        ("paid", 63),
        ("uncollectible", 60),
        ("part_credited", 55),
        ("open", 50),  # overdue
        ("paid", 45),
        ("open", 41),  # overdue
        ("void", 35),
        ("open", 33),  # overdue
        ("paid", 28),
        ("partly_paid", 21),
        ("open", 18),
        ("paid", 14),
        ("open", 10),
        ("partly_paid", 7),
        ("open", 3),
        ("draft", 0),
        ("draft", 0),
        ("draft", 0),
        ("draft", 0),
    ]
    return [
        InvoicePlan(
            key=f"D{index:02d}",
            customer=names[index % len(names)],
            days_ago=days_ago,
            outcome=outcome,
            variant=index,
        )
        for index, (outcome, days_ago) in enumerate(layout, 1)
    ]


PLANS = _plans()

# Three months of support-plan invoices that the payments demo has paid by bank transfer
# (payments.demo): (days ago issued, days until the bank booked the payment). Billing
# leaves them open; the bank file pays them.
BANK_HISTORY = [
    (89, 4),
    (86, 6),
    (81, 3),
    (77, 9),
    (74, 2),
    (70, 5),
    (66, 7),
    (61, 3),
    (58, 4),
    (55, 8),
    (50, 2),
    (47, 6),
    (43, 3),
    (39, 5),
    (36, 4),
    (31, 9),
    (28, 2),
    (25, 3),
    (21, 6),
    (18, 4),
    (14, 3),
    (11, 5),
    (8, 2),
    (6, 4),
    (4, 1),
    (3, 2),
]
HISTORY_PLANS = [
    InvoicePlan(
        key=f"H{index:02d}",
        customer=CUSTOMERS[index % 3]["name"],
        days_ago=days_ago,
        outcome="bank_transfer",
        variant=index,
    )
    for index, (days_ago, _days_to_pay) in enumerate(BANK_HISTORY, 1)
]


@dataclass(frozen=True)
class DemoLogin:
    """A demo account to print: who signs in where, and with what."""

    username: str
    role: str
    signs_in_at: str
    email: str
    password: str = DEMO_PASSWORD
    extra: dict[str, str] = field(default_factory=dict)


STAFF = [
    ("clerk", roles.BILLING_CLERK, "Clara", "Berg"),
    ("accountant", roles.ACCOUNTANT, "Anders", "Holm"),
    ("payments", roles.PAYMENTS_OPERATOR, "Petra", "Sjöberg"),
    ("fraud", roles.FRAUD_ANALYST, "Fredrik", "Ek"),
    ("security", roles.SECURITY_OFFICER, "Sara", "Nyström"),
    ("auditor", roles.AUDITOR, "Ali", "Karimi"),
]
PORTAL_USER = ("astrid", roles.CUSTOMER, "Astrid", "Lindqvist", "Astrid Lindqvist")


# --- seeding --------------------------------------------------------------------------------


def seed_demo() -> list[DemoLogin]:
    """Make whatever of the demo is missing, all in one transaction; return its logins."""
    _sync_roles()
    with transaction.atomic():
        _seed_company()
        customers = _seed_customers()
        # Issued in date order: a series' numbers never go back in time.
        for plan in sorted([*PLANS, *HISTORY_PLANS], key=lambda plan: -plan.days_ago):
            _seed_invoice(plan, customers[plan.customer])
        seed_failed_delivery(customers[CUSTOMERS[2]["name"]])
        return _seed_users(customers)


def _sync_roles() -> None:
    # The role groups and their permissions come from security's matrix; a no-op
    # (and no audit event) when they already match.
    sync_roles(by=SYSTEM)


def _seed_company() -> None:
    if selectors.get_company_profile() is None:
        services.update_company_profile(by=SYSTEM, **COMPANY)


def _seed_customers() -> dict[str, Customer]:
    existing = {c.name: c for c in Customer.objects.filter(name__in=[c["name"] for c in CUSTOMERS])}
    for values in CUSTOMERS:
        if values["name"] not in existing:
            existing[values["name"]] = services.create_customer(by=SYSTEM, **values)
    return existing


def invoice_note(plan: InvoicePlan) -> str:
    return f"Demo invoice {plan.key}. Tack för att ni anlitar oss!"


def _seed_invoice(plan: InvoicePlan, customer: Customer) -> None:
    if Invoice.objects.invoices().filter(notes=invoice_note(plan)).exists():
        return
    today = timezone.localdate()
    invoice = services.create_draft_invoice(
        customer=customer,
        by=SYSTEM,
        lines=_lines_for(customer, plan.variant),
        notes=invoice_note(plan),
        payment_terms_days=plan.terms,
    )
    if plan.outcome == "draft":
        return
    invoice = services.finalize_invoice(
        invoice, by=SYSTEM, issue_date=today - datetime.timedelta(days=plan.days_ago)
    )
    due = invoice.amount_due
    if plan.outcome == "paid":
        _pay(invoice, due)
    elif plan.outcome == "partly_paid":
        _pay(invoice, due // 3)
    elif plan.outcome == "void":
        services.void_invoice(invoice, by=SYSTEM, reason="Sent to the wrong customer")
    elif plan.outcome == "uncollectible":
        _pay(invoice, due // 4)
        services.mark_uncollectible(invoice, by=SYSTEM, reason="Debtor declared bankrupt")
    elif plan.outcome == "credited":
        services.issue_credit_note(invoice, by=SYSTEM, reason="Order cancelled")
    elif plan.outcome == "part_credited":
        first = invoice.lines.order_by("position", "pk").first()
        assert first is not None
        services.issue_credit_note(
            invoice,
            by=SYSTEM,
            lines=[services.CreditLine(line_id=first.pk, quantity=None)],
            reason="First line billed by mistake",
        )


def _pay(invoice: Invoice, amount: int) -> None:
    if amount > 0:
        services.record_payment_amount(
            invoice,
            amount=Money(amount, invoice.currency),
            by=SYSTEM,
            reference=f"demo bank transfer {invoice.ocr_reference}",
        )


def _seed_users(customers: dict[str, Customer]) -> list[DemoLogin]:
    logins = []
    for username, role, first_name, last_name in STAFF:
        user = _ensure_user(username, role, first_name, last_name, is_staff=True)
        # Staff MFA is mandatory: each demo login gets a published demo second factor.
        second_factor = ensure_demo_second_factor(user=user, by=SYSTEM)
        logins.append(DemoLogin(username, role, "/admin/", user.email, extra=second_factor))
    username, role, first_name, last_name, customer_name = PORTAL_USER
    customer = customers[customer_name]
    user = _ensure_user(username, role, first_name, last_name, is_staff=False, email=customer.email)
    if selectors.customer_for_user(user) is None:
        services.link_portal_account(user=user, customer=customer, by=SYSTEM)
    logins.append(DemoLogin(username, f"{role} ({customer_name})", "portal", user.email))
    return logins


def _ensure_user(
    username: str,
    role: str,
    first_name: str,
    last_name: str,
    *,
    is_staff: bool,
    email: str | None = None,
) -> Any:
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(
            username=username,
            email=email or f"{username}@{DEMO_EMAIL_DOMAIN}",
            first_name=first_name,
            last_name=last_name,
            is_staff=is_staff,
        )
        validate_password(DEMO_PASSWORD, user)
        user.set_password(DEMO_PASSWORD)
        user.save()
        record("demo.user_created", actor=SYSTEM, obj=user, username=username, role=role)
    if list(user.groups.values_list("name", flat=True)) != [role]:
        set_user_roles(user=user, roles=[role], by=SYSTEM, request=None)
    return user


# --- output ---------------------------------------------------------------------------------


def format_logins(logins: Sequence[DemoLogin]) -> str:
    """The demo logins as a table, with the warning that they are for the demo only.

    Every column comes from ``DemoLogin``; a login's ``extra`` entries (for
    example a demo second factor) become further columns.
    """
    extra_columns = sorted({key for login in logins for key in login.extra})
    header = ["Username", "Role", "Signs in at", "Email", "Password", *extra_columns]
    rows = [
        [
            login.username,
            login.role,
            login.signs_in_at,
            login.email,
            login.password,
            *(login.extra.get(column, "") for column in extra_columns),
        ]
        for login in logins
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = (str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join(
        [
            "Demo logins (DEMO ONLY: these well-known passwords must never exist in production)",
            line(header),
            rule,
            *(line(row) for row in rows),
        ]
    )
