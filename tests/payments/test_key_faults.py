"""Vault key faults as an operator meets them (the keyring file missing, holding another KEK,
unreadable): the customer gets one calm sentence and a 503 — no 500, no key id, no file
name, nothing charged — and staff get a `vault.key_fault` audit event and a security alert
(banner in the admin, email to the security officers). In development a missing keyring
is never created anew over keys the database holds."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from billing.models import Customer, Invoice
from payments import services
from payments.gateways.models import SandboxCharge
from payments.models import DataKey, EntryKey, Payment, PaymentMethod
from payments.services import card_payments
from payments.vault import keys
from payments.vault import services as key_services
from payments.vault.exceptions import KeysUnavailable
from security.keyring import FileKeyring, KeyringUnavailable, forget_cached_keyrings, get_keyring
from security.models import SecurityAlert, User
from security.roles import AUDITOR, BILLING_CLERK, SECURITY_OFFICER
from security.services import email_security_alert
from tests.factories import audit_events, make_user, with_role
from tests.payments.fixtures import APPROVED, key
from tests.payments.test_card_entry import session_payload

pytestmark = pytest.mark.django_db

CALM = "Card payments are unavailable right now; nothing was charged."
# Alice's company reads the portal in Swedish.
CALM_SV = "Kortbetalningar fungerar inte just nu; inget har dragits."
Cards = Callable[[str], PaymentMethod]


def _missing(path: Path) -> None:
    path.unlink()


def _wrong_kek(path: Path) -> None:
    """Another keyring in its place (a restore from the wrong backup): KEK version 1 too."""
    other = path.with_name("other.json")
    FileKeyring(other, create=True)
    other.replace(path)


def _unreadable(path: Path) -> None:
    """The path no longer reads as a file (the suite runs as root: a mode of 000 would not
    stop it reading; a directory in its place does)."""
    path.unlink()
    path.mkdir()


FAULTS = {"missing keyring": _missing, "wrong KEK": _wrong_kek, "unreadable file": _unreadable}


@pytest.fixture
def break_keyring(vault_keyring: Path) -> Callable[[str], None]:
    def apply(fault: str) -> None:
        FAULTS[fault](vault_keyring)
        forget_cached_keyrings()
        key_services.forget_encryption_key()  # as in a worker started after the fault

    return apply


@pytest.fixture
def officer(db: None) -> User:
    """Sam, a security officer with an email address."""
    return with_role(make_user("sam", is_staff=True), SECURITY_OFFICER)


def _new_card_payload(client: Client) -> str:
    """A card as the browser sends it from this client's session (current entry key, nonce)."""
    return session_payload(client, {"number": APPROVED, "expiry": "12/39", "cvc": "123"})


def _secrets_of_the_vault(path: Path) -> list[str]:
    """What must never reach a customer: key ids, the keyring's path, its words."""
    return [
        *[f"ek_{kid[3:]}" for kid in EntryKey.objects.values_list("kid", flat=True)],
        *[key.hex_id for key in DataKey.objects.all()],
        str(path),
        "ek_",
        "KEK",
        "keyring",
        "VAULT_KEYRING",
        "wrapped",
        "Traceback",
    ]


def _assert_calm(response: Any, path: Path) -> str:
    body = response.content.decode()
    assert response.status_code == 503
    assert CALM_SV in body
    for secret in _secrets_of_the_vault(path):
        assert secret not in body, secret
    return body


def _assert_reported(operation: str, officer: User, path: Path) -> None:
    [event] = audit_events("vault.key_fault")
    assert event.details["operation"] == operation
    assert event.details["detail"]  # the operator's words, for staff
    alert = SecurityAlert.objects.get(kind="vault.keys_unavailable")
    assert alert.is_open and alert.count == 1
    [job] = [
        SignedPackage.loads(row.payload)
        for row in OrmQ.objects.all()
        if "email_security_alert" in str(SignedPackage.loads(row.payload)["func"])
    ]
    assert job["args"] == (alert.pk,)
    assert email_security_alert(alert.pk) == 1
    [message] = mail.outbox
    assert message.to == [officer.email]
    assert "Card payments are failing" in message.subject
    for secret in _secrets_of_the_vault(path):
        assert secret not in f"{message.subject}\n{message.body}", secret


@pytest.mark.parametrize("fault", FAULTS)
def test_paying_with_a_saved_card_answers_calmly_and_charges_nothing(
    fault: str,
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    break_keyring: Callable[[str], None],
    officer: User,
    vault_keyring: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    card = saved_card(APPROVED)
    break_keyring(fault)

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
            {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": key(1)},
        )

    _assert_calm(response, vault_keyring)
    assert not Payment.objects.exists() and not SandboxCharge.objects.exists()
    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.amount_due == 100_000
    _assert_reported("reveal", officer, vault_keyring)


@pytest.mark.parametrize("fault", FAULTS)
def test_paying_with_a_new_card_answers_calmly_and_keeps_nothing(
    fault: str,
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    break_keyring: Callable[[str], None],
    officer: User,
    vault_keyring: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payload = _new_card_payload(alice_client)
    break_keyring(fault)

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
            {
                "amount": "1000",
                "card_payload": payload,
                "idempotency_key": key(2),
            },
        )

    _assert_calm(response, vault_keyring)
    assert not PaymentMethod.objects.exists()
    assert not Payment.objects.exists() and not SandboxCharge.objects.exists()
    _assert_reported("tokenize", officer, vault_keyring)


@pytest.mark.parametrize("fault", FAULTS)
def test_saving_a_card_answers_calmly_and_saves_nothing(
    fault: str,
    alice: User,
    admin_client_for: Callable[[User], Client],
    break_keyring: Callable[[str], None],
    officer: User,
    vault_keyring: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = admin_client_for(alice)  # a portal session with a verified second factor
    payload = _new_card_payload(client)
    break_keyring(fault)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("portal_pay:cards"), {"card_payload": payload})

    body = _assert_calm(response, vault_keyring)
    assert 'id="error-card"' in body
    assert not PaymentMethod.objects.exists()
    _assert_reported("tokenize", officer, vault_keyring)


def test_a_card_form_whose_entry_key_cannot_be_made_says_so_calmly(
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    break_keyring: Callable[[str], None],
    officer: User,
    vault_keyring: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    key_services.current_entry_key()
    # The entry key is past its cryptoperiod: the page needs a new one, wrapped by the KEK.
    EntryKey.objects.update(created_at=timezone.now() - datetime.timedelta(days=2))
    break_keyring("missing keyring")

    with django_capture_on_commit_callbacks(execute=True):
        page = alice_client.get(reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]))

    body = _assert_calm(page, vault_keyring)
    assert 'data-kid=""' in body
    _assert_reported("entry_key", officer, vault_keyring)


def test_a_fault_raised_again_counts_and_emails_the_officers_once(
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    break_keyring: Callable[[str], None],
    officer: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    card = saved_card(APPROVED)
    break_keyring("wrong KEK")
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            alice_client.post(
                reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
                {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": key(n)},
            )
        assert len(callbacks) == (1 if n == 0 else 0)  # the email job, queued once

    assert len(audit_events("vault.key_fault")) == 3
    assert SecurityAlert.objects.get().count == 3
    assert len(audit_events("security.alert_raised")) == 1


def test_a_later_charge_whose_keys_fail_is_failed_calmly_and_reported(
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    alice: User,
    break_keyring: Callable[[str], None],
    officer: User,
) -> None:
    """A payment charged after its reserve (a fraud analyst's approval, a reconciliation)
    reveals its card then: a key fault fails it, charging nothing, and is reported."""
    card = saved_card(APPROVED)
    payment, created, _ = card_payments._reserve_card_payment(
        thousand_sek_invoice,
        amount=thousand_sek_invoice.money(100_000),
        card_id=card.pk,
        key=key(9),
        request_hash="h",
        by=alice,
        request=None,
    )
    assert created and payment.status == Payment.Status.PENDING
    break_keyring("wrong KEK")

    charged = services.charge_payment(payment, by=alice)

    assert (charged.status, charged.failure_code) == (Payment.Status.FAILED, "card_unavailable")
    assert "ek_" not in charged.failure_message and "KEK" not in charged.failure_message
    assert not SandboxCharge.objects.exists()
    assert [e.details["operation"] for e in audit_events("vault.key_fault")] == ["reveal"]
    assert SecurityAlert.objects.filter(resolved_at__isnull=True).count() == 1


def test_security_officers_see_the_alert_on_every_admin_page_and_resolve_it(
    officer: User,
    clerk: User,
    admin_client_for: Callable[[User], Client],
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    break_keyring: Callable[[str], None],
) -> None:
    card = saved_card(APPROVED)
    break_keyring("missing keyring")
    alice_client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": key(1)},
    )
    alert = SecurityAlert.objects.get()
    officer_client = admin_client_for(officer)
    auditor = with_role(make_user("aud", is_staff=True), AUDITOR)

    home = officer_client.get(reverse("admin:index")).content.decode()
    assert 'id="security-alerts"' in home and "Card payments are failing" in home
    assert 'id="security-alerts"' in admin_client_for(auditor).get("/admin/").content.decode()
    clerk_page = admin_client_for(with_role(clerk, BILLING_CLERK)).get("/admin/")
    assert 'id="security-alerts"' not in clerk_page.content.decode()
    detail = officer_client.get(reverse("admin:security_securityalert_change", args=[alert.pk]))
    assert str(alert.detail) in detail.content.decode()  # on the server, for staff

    # The auditor reads alerts but may not close them: the action is not offered.
    changelist = reverse("admin:security_securityalert_changelist")
    refused = admin_client_for(auditor).post(
        changelist, {"action": "resolve", "_selected_action": [alert.pk]}
    )
    assert refused.status_code in (200, 302, 403)
    alert.refresh_from_db()
    assert alert.is_open and not audit_events("security.alert_resolved")

    officer_client.post(changelist, {"action": "resolve", "_selected_action": [alert.pk]})

    alert.refresh_from_db()
    assert not alert.is_open and alert.resolved_by == officer
    assert len(audit_events("security.alert_resolved")) == 1
    home = officer_client.get(reverse("admin:index")).content.decode()
    assert 'id="security-alerts"' not in home


def test_in_development_a_missing_keyring_is_not_created_over_keys_in_use(
    saved_card: Cards, vault_keyring: Path, settings: Any
) -> None:
    saved_card(APPROVED)
    assert settings.VAULT_KEYRING_CREATE  # development: created on first use...
    vault_keyring.unlink()
    forget_cached_keyrings()

    with pytest.raises(KeyringUnavailable) as caught:
        get_keyring()

    message = str(caught.value)
    assert str(vault_keyring) in message and "Restore the file" in message
    assert "1 data key(s)" in message
    assert not vault_keyring.exists()  # ...but not over keys the database holds
    with pytest.raises(KeysUnavailable):
        keys.vault_keyring()


def test_in_development_a_keyring_is_still_created_for_an_empty_vault(
    vault_keyring: Path,
) -> None:
    assert not DataKey.objects.exists() and not vault_keyring.exists()

    ring = get_keyring()

    assert vault_keyring.exists() and ring.versions() == [1]
    assert json.loads(vault_keyring.read_text())["current"] == 1


def test_the_customer_message_is_english_in_the_source_and_translated(
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    alice: User,
    alice_company: Customer,
    break_keyring: Callable[[str], None],
) -> None:
    from django.utils import translation

    from payments.exceptions import CardPaymentsUnavailable

    card = saved_card(APPROVED)
    break_keyring("wrong KEK")
    for language, expected in (("en", CALM), ("sv", CALM_SV)):
        with translation.override(language), pytest.raises(CardPaymentsUnavailable) as caught:
            services.pay_invoice(
                thousand_sek_invoice,
                amount=thousand_sek_invoice.money(100_000),
                payment_method=card,
                idempotency_key=key(1),
                by=alice,
            )
        assert caught.value.message == expected


def test_nobody_without_the_role_is_emailed(officer: User, db: None) -> None:
    outsider_staff = make_user("nosy", is_staff=True)
    officer_without_email = with_role(make_user("silent", is_staff=True), SECURITY_OFFICER)
    officer_without_email.email = ""
    officer_without_email.save()
    from security.services import raise_security_alert

    alert = raise_security_alert(
        kind="test.kind", summary="Something", detail="secret path", by=officer
    )

    assert email_security_alert(alert.pk) == 1
    [message] = mail.outbox
    assert message.to == [officer.email] and outsider_staff.email not in message.to
    assert "secret path" not in message.body
    assert Group.objects.get(name=SECURITY_OFFICER).user_set.count() == 2
