"""Issue 17, item 5: look-alike letters neither dodge the lockout nor sign in as another name.

After 10 failures on an address, "astrid" spelt with a long s (U+017F) or a dotless i
(U+0131) with
the right password signed in, and guesses on them were not counted: the lockout
lower-cased in Python while the sign-in matched with PostgreSQL's UPPER. Login names
are now normalized once (NFKC + case folding) for storage, lookup and lockout: a
variant is the same key or names no account.
"""

from __future__ import annotations

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from billing.models import Customer, PortalAccount
from security.identity import normalize_login
from security.models import User

PASSWORD = "Correct9horse4battery"
ADDRESS = "astrid@example.test"
LONG_S = "a\u017ftrid@example.test"  # a long s: case-folds to astrid
DOTLESS_I = "astr\u0131d@example.test"  # a dotless i: no account (it is not i)
FULLWIDTH = "\uff21\uff33\uff34\uff32\uff29\uff24@example.test"  # full-width ASTRID: NFKC -> ASTRID


@pytest.fixture
def astrid(alice_company: Customer) -> User:
    user = User.objects.create_user(username="astrid", email=ADDRESS, password=PASSWORD)
    PortalAccount.objects.create(user=user, customer=alice_company)
    return user


def _login(name: str, password: str) -> int:
    client = Client(REMOTE_ADDR="198.51.100.20")
    return client.post("/account/login/", {"username": name, "password": password}).status_code


@pytest.mark.django_db
@pytest.mark.parametrize("variant", [LONG_S, DOTLESS_I, FULLWIDTH, "ASTRID@EXAMPLE.TEST"])
def test_after_a_lockout_no_look_alike_signs_in(astrid: User, variant: str) -> None:
    assert [_login(ADDRESS, "wrong-password-9") for _ in range(10)][-1] == 429

    assert _login(variant, PASSWORD) != 302


@pytest.mark.django_db
def test_failures_on_look_alikes_count_against_the_account(astrid: User) -> None:
    for name in [LONG_S, FULLWIDTH, "Astrid@Example.Test", ADDRESS, LONG_S] * 2:
        _login(name, "wrong-password-9")

    assert _login(ADDRESS, PASSWORD) == 429


@pytest.mark.django_db
def test_a_dotless_i_names_no_account_even_with_the_right_password(astrid: User) -> None:
    assert _login(DOTLESS_I, PASSWORD) == 200  # the form again: no such account
    assert _login("astr\u0130d@example.test", PASSWORD) == 200  # İ (dotted capital I)


@pytest.mark.django_db
def test_the_folded_forms_sign_in_as_the_one_account(astrid: User) -> None:
    assert _login(LONG_S, PASSWORD) == 302
    assert _login(FULLWIDTH, PASSWORD) == 302


@pytest.mark.django_db
def test_staff_usernames_follow_the_same_rule() -> None:
    User.objects.create_user(username="Carla", password=PASSWORD, is_staff=True)
    assert User.objects.get().username == "carla"  # stored normalized
    assert _login("\uff23\uff41\uff52\uff4c\uff41", PASSWORD) == 302  # full-width Carla
    assert _login("c\u0430rla", PASSWORD) == 200  # a Cyrillic a: another name, no account
    for _ in range(10):
        _login("CARLA", "wrong-password-9")
    assert _login("carla", PASSWORD) == 429


@pytest.mark.django_db
def test_accounts_store_the_normalized_address() -> None:
    user = User.objects.create_user(username="\uff22ertil", email="Bertil@Example.TEST")
    assert (user.username, user.email) == ("bertil", "bertil@example.test")


@given(st.text(max_size=40))
def test_normalizing_is_idempotent(text: str) -> None:
    once = normalize_login(text)
    assert normalize_login(once) == once
