"""The portal attacked: Bob after Alice's things, forged posts, scripts, SQL, replays."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Customer, Invoice
from payments.exceptions import InvalidPayment
from payments.gateways.models import SandboxCharge
from payments.models import Payment, PaymentMethod
from payments.services import pay_invoice
from payments.vault.services import tokenize
from security.models import User
from tests.factories import line
from tests.payments import conftest as payments_conftest
from tests.payments import fixtures as payment_fixtures
from tests.payments.fixtures import APPROVED, key, sek

# The payments fixtures, used here too: a keyring per test, Alice's invoice and cards.
vault_keyring = payments_conftest.vault_keyring
thousand_sek_invoice = payment_fixtures.thousand_sek_invoice
saved_card = payment_fixtures.saved_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob_client(bob: User) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def alice_paid(
    thousand_sek_invoice: Invoice, saved_card: Callable[[str], PaymentMethod], alice: User
) -> Payment:
    """Alice's invoice, paid by her saved card."""
    return pay_invoice(
        thousand_sek_invoice,
        amount=sek(1000),
        payment_method=saved_card(APPROVED),
        idempotency_key=key("alice"),
        by=alice,
    )


def test_bob_gets_404_for_alices_invoice_receipt_payment_and_pay_page(
    bob_client: Client, alice_paid: Payment
) -> None:
    invoice = alice_paid.invoice
    for url in (
        reverse("portal:invoice", args=[invoice.pk]),
        reverse("portal:receipt", args=[invoice.pk]),
        reverse("portal_pay:pay", args=[invoice.pk]),
        reverse("portal_pay:payment", args=[alice_paid.pk]),
    ):
        assert bob_client.get(url).status_code == 404, url


def test_bob_cannot_delete_alices_card(
    bob_client: Client, bob: User, saved_card: Callable[[str], PaymentMethod]
) -> None:
    from tests.mfa_helpers import give_totp_device, mark_client_verified

    card = saved_card(APPROVED)
    mark_client_verified(bob_client, give_totp_device(bob))  # even with a fresh step-up

    url = reverse("portal_pay:delete_card", args=[card.pk])
    asking = bob_client.get(url)  # not even the question about Alice's card
    response = bob_client.post(url)

    assert asking.status_code == 404 and response.status_code == 404
    assert "4242" not in asking.content.decode()
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE


def test_bob_cannot_pay_alices_invoice_from_his_session(
    bob_client: Client,
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
) -> None:
    alices_card = saved_card(APPROVED)
    response = bob_client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {"amount": "1000.00", "payment_method": alices_card.pk, "idempotency_key": "z" * 32},
    )
    assert response.status_code == 404
    assert not Payment.objects.exists()
    assert not SandboxCharge.objects.exists()


@pytest.mark.parametrize("which", ["bobs", "made up", "not a number"])
def test_alice_cannot_pay_with_a_card_that_is_not_hers(
    alice: User,
    bob: User,
    bob_company: Customer,
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    which: str,
) -> None:
    saved_card(APPROVED)  # Alice has a card of her own
    bobs = tokenize(payments_conftest.card(), customer=bob_company, by=bob)
    posted = {"bobs": bobs.pk, "made up": bobs.pk + 1000, "not a number": "1 OR 1=1"}[which]
    client = Client()
    client.force_login(alice)

    response = client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {"amount": "1000.00", "payment_method": posted, "idempotency_key": "w" * 32},
    )

    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["payment_method"]
    assert not Payment.objects.exists()
    assert not SandboxCharge.objects.exists()


def test_the_service_refuses_another_customers_card_by_id(
    alice: User, bob: User, bob_company: Customer, thousand_sek_invoice: Invoice
) -> None:
    bobs = tokenize(payments_conftest.card(), customer=bob_company, by=bob)

    with pytest.raises(InvalidPayment) as refused:
        pay_invoice(
            thousand_sek_invoice,
            amount=sek(1000),
            payment_method=bobs.pk,
            idempotency_key=key(1),
            by=alice,
        )

    assert refused.value.field == "payment_method"
    assert not Payment.objects.exists()


def test_posts_without_a_csrf_token_are_refused(
    alice: User, thousand_sek_invoice: Invoice, saved_card: Callable[[str], PaymentMethod]
) -> None:
    card = saved_card(APPROVED)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    paying = client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": "c" * 32},
    )
    deleting = client.post(reverse("portal_pay:delete_card", args=[card.pk]))

    assert (paying.status_code, deleting.status_code) == (403, 403)
    assert not Payment.objects.exists()
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE


def test_a_script_in_a_line_or_a_customer_name_is_rendered_as_text(
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    script = "<script>alert('x')</script>"
    Customer.objects.filter(pk=alice_company.pk).update(name=f"Alice {script}")
    invoice = make_open_invoice(alice_company, [line(f"Repairs {script}")])
    client = Client()
    client.force_login(alice)

    pages = [
        client.get(reverse("portal:invoice", args=[invoice.pk])).content.decode(),
        client.get(reverse("portal:account")).content.decode(),
        client.get(reverse("portal:invoices"), {"q": script}).content.decode(),
    ]

    for page in pages:
        assert script not in page
    assert "Repairs &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in pages[0]


def test_sql_in_the_search_box_is_only_text(
    alice: User, alice_company: Customer, make_open_invoice: Callable[..., Invoice]
) -> None:
    make_open_invoice(alice_company)
    client = Client()
    client.force_login(alice)
    for attack in ("' OR '1'='1", "%' UNION SELECT password FROM security_user --", "\\"):
        response = client.get(reverse("portal:invoices"), {"q": attack})
        assert response.status_code == 200
        assert list(response.context["page"].object_list) == []


def test_a_nul_character_in_a_parameter_is_refused_naming_it_before_any_query(
    alice: User,
    clerk: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    admin_client_for: Callable[[User], Client],
) -> None:
    # PostgreSQL cannot hold or compare a NUL: a search box reading the raw parameter
    # ended in a database error (500). Every door answers 400 and names the parameter.
    invoice = make_open_invoice(alice_company)
    client = Client()
    client.force_login(alice)
    staff = admin_client_for(clerk)

    answers = [
        client.get(reverse("portal:invoices"), {"q": "F-0\x00"}),
        staff.get("/admin/billing/invoice/", {"q": "F\x00"}),
        Client().post(reverse("security:login"), {"username": "alice\x00", "password": "x"}),
        client.post(
            reverse("portal_pay:pay", args=[invoice.pk]),
            {"amount": "1.00", "payment_method": "1", "idempotency_key": "n" * 12, "x\x00": "1"},
        ),
    ]

    for response, name in zip(answers, ["q", "q", "username", "x\\0"], strict=True):
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/plain")
        assert f"The parameter '{name}' contains a NUL character" in response.content.decode()
    assert not Payment.objects.exists()
    # A search without one still works.
    assert client.get(reverse("portal:invoices"), {"q": "F-0"}).status_code == 200


def test_a_replayed_idempotency_key_with_a_changed_amount_is_refused(
    alice: User, thousand_sek_invoice: Invoice, saved_card: Callable[[str], PaymentMethod]
) -> None:
    card = saved_card(APPROVED)
    client = Client()
    client.force_login(alice)
    url = reverse("portal_pay:pay", args=[thousand_sek_invoice.pk])
    client.post(url, {"amount": "100.00", "payment_method": card.pk, "idempotency_key": "r" * 32})

    replay = client.post(
        url, {"amount": "900.00", "payment_method": card.pk, "idempotency_key": "r" * 32}
    )

    assert replay.status_code == 400
    assert "idempotensnyckeln har redan använts" in replay.content.decode()  # Alice: Swedish
    assert Payment.objects.count() == 1
    assert SandboxCharge.objects.count() == 1
