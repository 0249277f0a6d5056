"""Issue 27 item 6, shown on PostgreSQL: the card secrets table is readable only by the
vault role; the web role is refused, and the portal, admin and API still work with it.

Every test here runs with ``default`` connected as the web role and the ``vault`` alias
as the vault role (``tests/payments/vault_role.py``); they are transactional, since the
vault's connection commits on its own.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from psycopg import errors

from audit import SYSTEM
from audit.models import AuditEvent
from billing.models import Customer, Invoice
from db.routers import VAULT_DB_ALIAS, VaultRouter, vault_alias
from payments.models import CardSecret, DataKey, Payment, PaymentMethod
from payments.vault import services as vault_services
from payments.vault.services import delete_payment_method, reveal_card, tokenize
from security.models import User
from tests.api.conftest import ALL_SCOPES, Api, make_token
from tests.factories import ensure_default_series, line
from tests.payments.conftest import MASTERCARD, VISA, card
from tests.payments.fixtures import APPROVED
from tests.payments.test_card_entry import form_payload
from tests.payments.vault_role import VaultRoles, role_names

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True, databases=["default", "vault"]),
]

AdminLogin = Callable[[User], Client]


def _denied(alias: str, statement: str) -> None:
    with pytest.raises(DatabaseError) as refused, connections[alias].cursor() as cursor:
        cursor.execute(statement)
    assert isinstance(refused.value.__cause__, errors.InsufficientPrivilege), refused.value


def test_the_web_role_is_refused_every_access_to_the_card_secrets_table(
    vault_role: VaultRoles, alice_company: Customer, alice: User
) -> None:
    method = tokenize(card(), customer=alice_company, by=alice)

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == vault_role.web
    _denied("default", "SELECT * FROM payments_vault_cardsecret")
    _denied("default", "SELECT count(*) FROM payments_vault_cardsecret")
    _denied("default", "UPDATE payments_vault_cardsecret SET ciphertext = ''::bytea")
    _denied("default", "DELETE FROM payments_vault_cardsecret")
    _denied("default", "INSERT INTO payments_vault_cardsecret VALUES ('t', ''::bytea, now(), 1)")
    # The web role still reads what may be shown of the card.
    assert PaymentMethod.objects.get(pk=method.pk).last4 == "1111"


def test_the_vault_alias_reads_the_secrets_and_nothing_else(
    vault_role: VaultRoles, alice_company: Customer, alice: User
) -> None:
    method = tokenize(card(), customer=alice_company, by=alice)

    assert vault_alias() == VAULT_DB_ALIAS
    with connections[VAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT current_user, count(*) FROM payments_vault_cardsecret")
        assert cursor.fetchone() == (vault_role.vault, 1)
    assert CardSecret.objects.get(token=method.token).data_key.state == DataKey.State.ACTIVE
    _denied(VAULT_DB_ALIAS, "SELECT * FROM billing_customer")
    _denied(VAULT_DB_ALIAS, "SELECT * FROM payments_paymentmethod")
    _denied(VAULT_DB_ALIAS, "SELECT * FROM audit_auditevent")
    _denied(VAULT_DB_ALIAS, "UPDATE payments_datakey SET state = 'active'")


def test_tokenize_reveal_reencrypt_and_delete_work_with_the_web_role_refused(
    vault_role: VaultRoles, alice_company: Customer, alice: User, gateway: User
) -> None:
    first = tokenize(card(VISA), customer=alice_company, by=alice)
    old = DataKey.objects.get(state=DataKey.State.ACTIVE)
    new = vault_services.rotate_data_key(by=SYSTEM)
    second = tokenize(card(MASTERCARD), customer=alice_company, by=alice)

    report = vault_services.reencrypt_vault(by=SYSTEM)

    assert report.reencrypted == 1 and report.destroyed == [old.hex_id]
    assert set(CardSecret.objects.values_list("data_key_id", flat=True)) == {new.pk}
    assert reveal_card(first.token, purpose="after rotation", by=gateway).number == VISA
    assert reveal_card(second.token, purpose="after rotation", by=gateway).number == MASTERCARD

    delete_payment_method(first, by=alice)

    assert not CardSecret.objects.filter(token=first.token).exists()
    assert CardSecret.objects.filter(token=second.token).exists()
    deleted = AuditEvent.objects.get(action="vault.payment_method_deleted")
    assert deleted.details["key_id"] == new.hex_id


def test_a_deletion_rolled_back_keeps_the_secret(
    vault_role: VaultRoles, alice_company: Customer, alice: User, gateway: User
) -> None:
    """The secret is erased only once the method's deletion commits."""
    method = tokenize(card(), customer=alice_company, by=alice)

    with pytest.raises(RuntimeError), transaction.atomic():
        delete_payment_method(method, by=alice)
        raise RuntimeError("the caller fails after the deletion")

    assert PaymentMethod.objects.get(pk=method.pk).status == PaymentMethod.Status.ACTIVE
    assert reveal_card(method.token, purpose="still there", by=gateway).number == VISA


def test_a_tokenize_rolled_back_leaves_an_orphan_secret_that_the_hourly_job_erases(
    vault_role: VaultRoles, alice_company: Customer, alice: User, settings: Any
) -> None:
    settings.VAULT_ORPHAN_SECRET_MINUTES = 60
    kept = tokenize(card(MASTERCARD), customer=alice_company, by=alice)
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = tokenize(card(), customer=alice_company, by=alice)
        raise RuntimeError("the caller's transaction rolls back")
    assert not PaymentMethod.objects.filter(token=lost.token).exists()
    assert CardSecret.objects.filter(token=lost.token).exists()  # committed on its own

    assert vault_services.purge_orphan_secrets(by=SYSTEM) == 0  # young: maybe in progress
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=61)):
        assert vault_services.rotate_due_keys(by=SYSTEM)["orphan_secrets_erased"] == 1

    assert set(CardSecret.objects.values_list("token", flat=True)) == {kept.token}
    event = AuditEvent.objects.get(action="vault.orphan_secrets_erased")
    assert event.details["records"] == 1


@pytest.fixture
def series() -> None:
    ensure_default_series()  # the flush of a transactional test took the migrations' rows


def test_paying_in_the_portal_with_a_saved_and_a_new_card(
    vault_role: VaultRoles,
    series: None,
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
) -> None:
    card_on_file = saved_card(APPROVED)
    pay = reverse("portal_pay:pay", args=[thousand_sek_invoice.pk])

    page = alice_client.get(pay)
    response = alice_client.post(
        pay, {"amount": "1000.00", "payment_method": card_on_file.pk, "idempotency_key": "k" * 32}
    )

    assert page.status_code == 200 and "•••• 4242" in page.content.decode()
    assert response.status_code == 302
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED

    second = make_open_invoice(alice_company, [line("Support", "1", "80.00")])
    second_pay = reverse("portal_pay:pay", args=[second.pk])
    payload = form_payload(
        alice_client, second_pay, {"number": APPROVED, "expiry": "12/39", "cvc": "123"}
    )
    response = alice_client.post(
        second_pay, {"amount": "100", "card_payload": payload, "idempotency_key": "n" * 32}
    )

    assert response.status_code == 302
    paid = Payment.objects.get(invoice=second)
    assert (paid.status, paid.card_last4) == (Payment.Status.SUCCEEDED, "4242")
    # The card for one payment was deleted once paid: its secret erased after the commit.
    assert paid.payment_method is not None
    assert not CardSecret.objects.filter(token=paid.payment_method.token).exists()
    assert CardSecret.objects.filter(token=card_on_file.token).exists()


def test_the_admin_pages_work_with_the_web_role(
    vault_role: VaultRoles,
    alice_company: Customer,
    alice: User,
    root: User,
    officer: User,
    admin_client_for: AdminLogin,
) -> None:
    method = tokenize(card(), customer=alice_company, by=alice)

    staff = admin_client_for(root)
    listing = staff.get(reverse("admin:payments_paymentmethod_changelist"))
    detail = staff.get(reverse("admin:payments_paymentmethod_change", args=[method.pk]))
    status = admin_client_for(officer).get(reverse("admin:payments_datakey_changelist"))

    assert listing.status_code == detail.status_code == status.status_code == 200
    assert "1111" in listing.content.decode()
    key = DataKey.objects.get(state=DataKey.State.ACTIVE)
    assert key.hex_id in status.content.decode()


def test_the_api_lists_and_saves_cards_with_the_web_role(
    vault_role: VaultRoles, alice: User, settings: Any, saved_card: Callable[[str], PaymentMethod]
) -> None:
    from tests.api.test_payment_methods import CARD, encrypt

    settings.SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS = False
    saved_card(APPROVED)
    api = Api(make_token(alice, ALL_SCOPES))

    listed = api.get("payment-methods")
    entry = api.get("payment-methods/entry-key").json()
    created = api.post("payment-methods", {"payload": encrypt(entry, CARD)})

    assert listed.status_code == 200 and len(listed.json()["results"]) == 1
    assert created.status_code == 201, created.json()
    token = PaymentMethod.objects.get(pk=created.json()["id"]).token
    assert CardSecret.objects.filter(token=token).exists()


def test_the_grants_command_says_what_is_missing(settings: Any) -> None:
    settings.DATABASE_WEB_ROLE, settings.VAULT_DATABASE_ROLE = "", ""
    with pytest.raises(CommandError, match="DATABASE_WEB_ROLE and VAULT_DATABASE_ROLE"):
        call_command("grant_vault_role")

    settings.DATABASE_WEB_ROLE, settings.VAULT_DATABASE_ROLE = "tillit_no_such_role", "x"
    with pytest.raises(Exception, match="DATABASE_WEB_ROLE: no PostgreSQL role"):
        call_command("grant_vault_role")


def test_role_names_follow_the_test_database_and_fit_postgresql() -> None:
    assert role_names("test_tillit_gw1") == VaultRoles(
        "test_tillit_gw1_web", "test_tillit_gw1_vault"
    )
    long = role_names("test_" + "x" * 80)
    assert len(long.vault.encode()) <= 63 and long.vault != role_names("test_" + "y" * 80).vault


def test_the_router_keeps_migrations_off_the_vault_alias() -> None:
    router = VaultRouter()
    assert router.allow_migrate(VAULT_DB_ALIAS, "payments") is False
    assert router.allow_migrate("default", "payments") is None
    assert router.db_for_read(CardSecret) == vault_alias()
    assert router.db_for_write(PaymentMethod) is None
