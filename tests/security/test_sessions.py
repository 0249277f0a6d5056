"""Sessions (PCI DSS 8.2.8, 8.2.6): idle and absolute limits, key rotation, server-side logout,
the session list, and dormant staff accounts."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client, override_settings
from django_q.models import Schedule

from audit.models import AuditEvent
from security.models import User, UserSession
from tests.mfa_helpers import give_totp_device, totp_code

PASSWORD = "Correct9horse4battery"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def dora() -> User:
    return User.objects.create_user(username="dora", email="dora@example.test", password=PASSWORD)


def _login(client: Client, username: str = "dora") -> None:
    response = client.post("/account/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302


@pytest.mark.django_db
def test_after_fifteen_minutes_and_one_second_idle_the_next_request_needs_login(
    dora: User,
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = Client()
        _login(client)
        clock.shift(dt.timedelta(minutes=14, seconds=59))
        assert client.get("/account/").status_code == 200
        clock.shift(dt.timedelta(minutes=15, seconds=1))
        response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")


@pytest.mark.django_db
def test_activity_pushes_the_idle_expiry_at_most_once_a_minute(dora: User) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = Client()
        _login(client)
        key = client.session.session_key
        clock.shift(dt.timedelta(minutes=2))
        assert client.get("/account/").status_code == 200
        pushed = Session.objects.get(session_key=key).expire_date
        clock.shift(dt.timedelta(seconds=30))
        assert client.get("/account/").status_code == 200
        unchanged = Session.objects.get(session_key=key).expire_date
        clock.shift(dt.timedelta(seconds=31))
        assert client.get("/account/").status_code == 200
        later = Session.objects.get(session_key=key).expire_date
        for _ in range(20):  # busy for 20 more minutes: the session lives on
            clock.shift(dt.timedelta(minutes=1))
            assert client.get("/account/").status_code == 200

    assert pushed == START + dt.timedelta(minutes=2 + 15)
    assert unchanged == pushed
    assert later == pushed + dt.timedelta(seconds=61)


@pytest.mark.django_db
@override_settings(SESSION_COOKIE_AGE=24 * 60 * 60)
def test_a_session_ends_twelve_hours_after_login_however_active(dora: User) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = Client()
        _login(client)
        clock.shift(dt.timedelta(hours=11, minutes=59))
        assert client.get("/account/").status_code == 200
        clock.shift(dt.timedelta(minutes=1, seconds=1))
        response = client.get("/account/")
    assert response.status_code == 302
    assert client.get("/account/").status_code == 302


@pytest.mark.django_db
def test_login_and_verification_each_give_a_new_session_key(dora: User) -> None:
    device = give_totp_device(dora)
    client = Client()
    client.get("/account/login/")
    client.session.save()
    anonymous_key = client.session.session_key
    with time_machine.travel(START, tick=False):
        _login(client)
        password_key = client.session.session_key
        client.post("/account/verify/", {"code": totp_code(device)})
    verified_key = client.session.session_key
    assert len({anonymous_key, password_key, verified_key}) == 3
    assert UserSession.objects.get(user=dora).session_key == verified_key


@pytest.mark.django_db
def test_logout_deletes_the_session_on_the_server(dora: User) -> None:
    client = Client()
    _login(client)
    key = client.session.session_key
    cookie = client.cookies["sessionid"].value
    client.post("/account/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    replay = Client()
    replay.cookies["sessionid"] = cookie
    assert replay.get("/account/").status_code == 302


@pytest.mark.django_db
def test_a_user_sees_their_sessions_and_ends_the_others(dora: User) -> None:
    here, laptop, phone = Client(), Client(HTTP_USER_AGENT="Laptop"), Client()
    for client in (here, laptop, phone):
        _login(client)
    page = here.get("/account/").content.decode()
    assert page.count("last seen") == 3
    assert page.count("this session</span>") == 1

    laptop_row = UserSession.objects.get(user_agent="Laptop")
    here.post(f"/account/sessions/{laptop_row.pk}/end/")
    assert laptop.get("/account/").status_code == 302
    assert phone.get("/account/").status_code == 200

    here.post("/account/sessions/end-others/")
    assert phone.get("/account/").status_code == 302
    assert here.get("/account/").status_code == 200
    assert AuditEvent.objects.filter(action="security.sessions_ended").get().details == {"count": 1}


@pytest.mark.django_db
def test_nobody_ends_another_users_session(dora: User) -> None:
    User.objects.create_user(username="eve", password=PASSWORD)
    dora_client, eve_client = Client(), Client()
    _login(dora_client)
    _login(eve_client, "eve")
    dora_session = UserSession.objects.get(user=dora)
    response = eve_client.post(f"/account/sessions/{dora_session.pk}/end/")
    assert response.status_code == 404
    assert dora_client.get("/account/").status_code == 200


@pytest.mark.django_db
def test_staff_unused_for_ninety_days_are_disabled_and_audited() -> None:
    now = dt.datetime(2026, 6, 1, 3, 0, tzinfo=dt.UTC)
    dormant = User.objects.create_user(username="old", is_staff=True)
    dormant.last_login = now - dt.timedelta(days=90, minutes=1)
    recent = User.objects.create_user(username="recent", is_staff=True)
    recent.last_login = now - dt.timedelta(days=89)
    customer = User.objects.create_user(username="quiet-customer")
    customer.last_login = now - dt.timedelta(days=400)
    for user in (dormant, recent, customer):
        user.save()

    with time_machine.travel(now, tick=False):
        call_command("disable_dormant_staff", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert [u.username for u in User.objects.filter(is_active=False)] == ["old"]
    event = AuditEvent.objects.filter(action="security.account_disabled").get()
    assert event.object_id == str(dormant.pk)
    assert event.details == {"reason": "dormant", "days": 90}


@pytest.mark.django_db
def test_the_dormant_staff_job_is_scheduled_daily() -> None:
    schedule = Schedule.objects.get(name="security.disable_dormant_staff")
    assert schedule.schedule_type == Schedule.DAILY
    assert schedule.func == "security.tasks.disable_dormant_staff_accounts"


@pytest.fixture
def eve() -> User:
    return User.objects.create_user(username="eve", email="eve@example.test", password=PASSWORD)


def _session_key(client: Client) -> str:
    return client.cookies["sessionid"].value


@pytest.mark.django_db
def test_a_signed_in_request_reads_its_session_and_user_in_one_query(dora: User) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = Client()
    _login(client)
    client.get("/account/")  # the once-a-minute session touch is done

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/account/")

    assert response.status_code == 200
    assert response.wsgi_request.user == dora
    first = queries.captured_queries[0]["sql"]
    assert "django_session" in first and "security_usersession" in first
    assert not any(q["sql"].startswith('SELECT "django_session"') for q in queries)


@pytest.mark.django_db
def test_the_user_is_the_one_the_signed_session_names_not_the_session_list(
    dora: User, eve: User
) -> None:
    client = Client()
    _login(client)
    # An attacker who could rewrite the session list still gets no one else's account:
    # the user read with the session is used only if the signed session data names it.
    UserSession.objects.filter(session_key=_session_key(client)).update(user=eve)

    response = client.get("/account/")

    assert response.status_code == 200
    assert response.wsgi_request.user == dora


@pytest.mark.django_db
def test_a_session_missing_from_the_session_list_still_signs_in(dora: User) -> None:
    client = Client()
    _login(client)
    UserSession.objects.filter(session_key=_session_key(client)).delete()

    response = client.get("/account/")

    assert response.wsgi_request.user == dora


@pytest.mark.django_db
def test_a_deleted_session_is_signed_out_even_with_its_session_list_row(dora: User) -> None:
    client = Client()
    _login(client)
    key = _session_key(client)
    Session.objects.filter(session_key=key).delete()

    response = client.get("/account/")

    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")
    assert not response.wsgi_request.user.is_authenticated


@pytest.mark.django_db
def test_a_user_read_with_a_session_is_taken_once_and_only_for_its_id(dora: User) -> None:
    from security.sessions import SessionStore, user_read_with_session

    client = Client()
    _login(client)
    store = SessionStore(session_key=_session_key(client))
    store.load()

    assert user_read_with_session(dora.pk + 1) is None  # another id: not given
    store.load()
    assert user_read_with_session(dora.pk) == dora
    assert user_read_with_session(dora.pk) is None  # taken once
