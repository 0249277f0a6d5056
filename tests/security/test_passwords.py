"""Password policy (PCI DSS 8.3.6, 8.3.7): length, letters and digits, no reuse of the last 4."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from audit.models import AuditEvent
from security.models import PasswordHistory, User, UserSession
from tests.mfa_helpers import give_totp_device, mark_client_verified

PASSWORDS = [f"Harbour{n}lantern{n}" for n in range(1, 7)]


def _user_with_history(*passwords: str) -> User:
    user = User.objects.create_user(username="pia", email="pia@example.test")
    for password in passwords:
        user.set_password(password)
        user.save()
    return user


@pytest.mark.django_db
def test_an_eleven_character_password_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_password("Abcdefgh123")
    assert "password_too_short" in [e.code for e in caught.value.error_list]


@pytest.mark.django_db
def test_a_twelve_character_password_with_letters_and_digits_is_accepted() -> None:
    validate_password("Abcdefgh1234")


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["onlylettershere", "123498765432109"])
def test_a_password_needs_letters_and_digits(password: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_password(password)
    assert "password_needs_letters_and_digits" in [e.code for e in caught.value.error_list]


@pytest.mark.django_db
def test_common_and_similar_passwords_are_refused() -> None:
    user = User(username="margaretha1980", email="margaretha1980@example.test")
    with pytest.raises(ValidationError):
        validate_password("margaretha1980", user)
    with pytest.raises(ValidationError):
        validate_password("password1234")


@pytest.mark.django_db
@pytest.mark.parametrize("reused", PASSWORDS[1:5])
def test_each_of_the_last_four_passwords_is_refused(reused: str) -> None:
    user = _user_with_history(*PASSWORDS[:5])
    with pytest.raises(ValidationError) as caught:
        validate_password(reused, user)
    assert "password_reused" in [e.code for e in caught.value.error_list]


@pytest.mark.django_db
def test_the_fifth_last_password_is_accepted_again() -> None:
    user = _user_with_history(*PASSWORDS[:5])
    validate_password(PASSWORDS[0], user)


@pytest.mark.django_db
def test_history_keeps_hashes_only_and_only_four() -> None:
    user = _user_with_history(*PASSWORDS[:6])
    stored = list(PasswordHistory.objects.filter(user=user).values_list("password_hash", flat=True))
    assert len(stored) == 4
    assert not any(p in h for h in stored for p in PASSWORDS)


@pytest.mark.django_db
def test_the_password_page_refuses_a_reused_password_and_changes_nothing() -> None:
    user = _user_with_history(PASSWORDS[0], PASSWORDS[1])
    client = Client()
    client.force_login(user)
    before = User.objects.get(pk=user.pk).password
    response = client.post(
        "/account/password/",
        {
            "old_password": PASSWORDS[1],
            "new_password1": PASSWORDS[0],
            "new_password2": PASSWORDS[0],
        },
    )
    assert response.status_code == 200
    assert "must differ from your last 4 passwords" in response.content.decode()
    assert User.objects.get(pk=user.pk).password == before


@pytest.mark.django_db
def test_a_password_change_ends_every_other_session_and_is_audited() -> None:
    user = _user_with_history(PASSWORDS[0])
    device = give_totp_device(user)
    here, elsewhere = Client(), Client()
    for client in (here, elsewhere):
        client.force_login(user)
        mark_client_verified(client, device)
    assert UserSession.objects.filter(user=user).count() == 2

    response = here.post(
        "/account/password/",
        {
            "old_password": PASSWORDS[0],
            "new_password1": PASSWORDS[1],
            "new_password2": PASSWORDS[1],
        },
    )

    assert response.status_code == 302
    assert here.get("/account/").status_code == 200
    assert elsewhere.get("/account/").status_code == 302
    assert UserSession.objects.filter(user=user).count() == 1
    event = AuditEvent.objects.filter(action="security.password_changed").get()
    assert event.details == {"sessions_ended": 1}


@pytest.mark.django_db
def test_the_admins_change_password_link_leads_to_our_audited_page(
    clerk: User, admin_client_for: Callable[[User], Client]
) -> None:
    """Django's own admin password view would change it without ending the other sessions
    or an audit event: the admin sends staff to /account/password/ instead, GET and POST."""
    client = admin_client_for(clerk)
    old_hash = User.objects.get(pk=clerk.pk).password

    page = client.get("/admin/password_change/")
    posted = client.post(
        "/admin/password_change/",
        {"old_password": "x", "new_password1": PASSWORDS[1], "new_password2": PASSWORDS[1]},
    )

    assert page.status_code == 302 and page["Location"] == "/account/password/"
    assert posted.status_code == 302 and posted["Location"] == "/account/password/"
    assert User.objects.get(pk=clerk.pk).password == old_hash
