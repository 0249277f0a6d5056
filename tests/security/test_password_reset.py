"""Password reset by e-mail: no hint whether an account exists; the link works once, 30 minutes."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail
from django.test import Client

from audit.models import AuditEvent
from security.models import User

PASSWORD = "Correct9horse4battery"
NEW_PASSWORD = "Fresh7meadow2lantern"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def erik() -> User:
    return User.objects.create_user(username="erik", email="erik@example.test", password=PASSWORD)


def _ask(email: str) -> tuple[int, str, str]:
    response = Client().post("/account/password/reset/", {"email": email}, follow=True)
    # Every page's language switch carries a CSRF token, masked afresh on each answer.
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    return response.status_code, response.redirect_chain[-1][0], page


def _link() -> str:
    match = re.search(r"http://testserver(/account/password/reset/\S+/)", str(mail.outbox[-1].body))
    assert match
    return match.group(1)


@pytest.mark.django_db
def test_the_answer_is_the_same_whether_or_not_the_account_exists(erik: User) -> None:
    known = _ask("erik@example.test")
    unknown = _ask("nobody@example.test")
    assert known == unknown
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_reset_link_works_once(erik: User) -> None:
    with time_machine.travel(START, tick=False):
        _ask("erik@example.test")
        client = Client()
        form_url = client.get(_link(), follow=True).redirect_chain[-1][0]
        response = client.post(
            form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
        assert response.status_code == 302
        again = Client().get(_link(), follow=True)
    assert "invalid, used or expired" in again.content.decode()
    erik.refresh_from_db()
    assert erik.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action="security.password_reset").exists()


@pytest.mark.django_db
def test_a_reset_link_expires_after_thirty_minutes(erik: User) -> None:
    with time_machine.travel(START, tick=False) as clock:
        _ask("erik@example.test")
        clock.shift(dt.timedelta(minutes=30, seconds=1))
        response = Client().get(_link(), follow=True)
    assert "invalid, used or expired" in response.content.decode()


@pytest.mark.django_db
def test_a_tampered_link_is_refused(erik: User) -> None:
    _ask("erik@example.test")
    link = _link()
    tampered = link[:-3] + ("a" if link[-3] != "a" else "b") + link[-2:]
    response = Client().get(tampered, follow=True)
    assert "invalid, used or expired" in response.content.decode()
    erik.refresh_from_db()
    assert erik.check_password(PASSWORD)


@pytest.mark.django_db
def test_the_reset_email_is_in_the_customers_language_whatever_page_asked(alice: User) -> None:
    # Alice's company reads Swedish; she asks from a browser that prefers English.
    Client(HTTP_ACCEPT_LANGUAGE="en").post("/account/password/reset/", {"email": alice.email})

    [message] = mail.outbox
    assert message.subject == "Återställning av ditt Tillit-lösenord"
    assert "Öppna den här länken inom 30 minuter" in str(message.body)


@pytest.mark.django_db
def test_an_account_without_a_language_of_its_own_gets_the_pages_language(erik: User) -> None:
    Client(HTTP_ACCEPT_LANGUAGE="sv").post("/account/password/reset/", {"email": erik.email})
    Client(HTTP_ACCEPT_LANGUAGE="en").post("/account/password/reset/", {"email": erik.email})

    assert [m.subject for m in mail.outbox] == [
        "Återställning av ditt Tillit-lösenord",
        "Your Tillit password reset",
    ]
