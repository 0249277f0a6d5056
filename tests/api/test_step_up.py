"""Step-up for a customer's token (decision 74, RFC 9470): the token carries when the
customer confirmed a second factor before consenting; a sensitive action (deleting a saved
card, for a customer with a second factor) needs that within the portal's step-up window,
else 401 ``insufficient_user_authentication`` with ``max_age``, and the app sends the
customer through /oauth/authorize with ``max_age`` to confirm it again. Attacked: a stale
proof, another token's proof, a refresh that would make it fresher, a portal session sent
beside the token."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from payments.models import PaymentMethod
from security.models import ApiClient, ApiStepUp, User
from tests.api.conftest import Api, error_of, registered
from tests.api.test_oauth_flows import REDIRECT, _exchange, _pkce, _refresh
from tests.mfa_helpers import give_totp_device, mark_client_verified
from tests.payments.fixtures import APPROVED

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]


def _prove(api: Api, *, seconds_ago: float) -> None:
    token = AccessToken.objects.get(token_checksum=_checksum(api.raw))
    ApiStepUp.objects.create(
        access_token=token, mfa_verified_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def _checksum(raw: str) -> str:
    import hashlib

    return hashlib.sha256(raw.encode()).hexdigest()


def _assert_challenge(response: Any, settings: Any) -> None:
    assert response.status_code == 401, response.content
    error = error_of(response)
    assert error["code"] == "insufficient_user_authentication"
    assert error["field"] == "step_up"
    challenge = response["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert f"max_age={settings.SECURITY_STEP_UP_SECONDS}" in challenge


def test_a_token_without_a_second_factor_gets_the_step_up_challenge(
    alice_api: Api, alice: User, saved_card: Cards, settings: Any
) -> None:
    card = saved_card(APPROVED)
    give_totp_device(alice)
    _assert_challenge(alice_api.delete(f"payment-methods/{card.pk}"), settings)
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE


def test_a_token_with_a_fresh_second_factor_deletes_the_card(
    alice_api: Api, alice: User, saved_card: Cards
) -> None:
    card = saved_card(APPROVED)
    give_totp_device(alice)
    _prove(alice_api, seconds_ago=30)
    assert alice_api.delete(f"payment-methods/{card.pk}").status_code == 204
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.DELETED


def test_a_second_factor_older_than_the_window_is_refused(
    alice_api: Api, alice: User, saved_card: Cards, settings: Any
) -> None:
    card = saved_card(APPROVED)
    give_totp_device(alice)
    _prove(alice_api, seconds_ago=settings.SECURITY_STEP_UP_SECONDS + 1)
    _assert_challenge(alice_api.delete(f"payment-methods/{card.pk}"), settings)
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE


def test_another_tokens_second_factor_does_not_count(
    api_as: Callable[..., Api], alice: User, saved_card: Cards, settings: Any
) -> None:
    card = saved_card(APPROVED)
    give_totp_device(alice)
    proven, unproven = api_as(alice), api_as(alice)
    _prove(proven, seconds_ago=10)
    _assert_challenge(unproven.delete(f"payment-methods/{card.pk}"), settings)
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE


def test_a_verified_portal_session_sent_beside_the_token_does_not_count(
    alice_api: Api, alice: User, saved_card: Cards, settings: Any
) -> None:
    card = saved_card(APPROVED)
    device = give_totp_device(alice)
    alice_api.client.force_login(alice)
    mark_client_verified(alice_api.client, device)  # a fresh second factor in the session
    _assert_challenge(alice_api.delete(f"payment-methods/{card.pk}"), settings)
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE


# --- through the real OAuth endpoints ------------------------------------------------------


@pytest.fixture
def card_app() -> Application:
    return registered(
        "Alice's wallet app",
        kind=ApiClient.Kind.CUSTOMER_APP,
        scopes=["payment_methods:read", "payment_methods:write"],
        redirect=REDIRECT,
    )


def _authorize(browser: Client, app: Application, **extra: str) -> tuple[Any, str]:
    verifier, challenge = _pkce()
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "payment_methods:read payment_methods:write",
        "state": "st",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return browser.get("/oauth/authorize/", params), verifier


def _consent_and_exchange(browser: Client, app: Application, **extra: str) -> dict[str, Any]:
    page, verifier = _authorize(browser, app, **extra)
    assert page.status_code == 200, page.get("Location")
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    answer = browser.post("/oauth/authorize/", {**form, "allow": "on"})
    code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
    tokens = _exchange(app, code, verifier)
    assert tokens.status_code == 200, tokens.content
    return dict(tokens.json())


def _delete(raw: str, card: PaymentMethod) -> Any:
    return Client().delete(f"/api/v1/payment-methods/{card.pk}", HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_the_consents_second_factor_rides_on_the_token_and_refresh_keeps_it(
    alice: User, card_app: Application, saved_card: Cards, settings: Any
) -> None:
    first, second = saved_card(APPROVED), saved_card(APPROVED)
    device = give_totp_device(alice)
    browser = Client()
    browser.force_login(alice)
    mark_client_verified(browser, device)
    tokens = _consent_and_exchange(browser, card_app)

    assert _delete(tokens["access_token"], first).status_code == 204
    consented = ApiStepUp.objects.get(
        access_token__token_checksum=_checksum(tokens["access_token"])
    ).mfa_verified_at

    # Later, a refreshed token is new but its second factor is the consent's: too old.
    later = timezone.now() + timedelta(seconds=settings.SECURITY_STEP_UP_SECONDS + 60)
    with time_machine.travel(later, tick=False):
        refreshed = _refresh(card_app, tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.content
        new_token = refreshed.json()["access_token"]
        carried = ApiStepUp.objects.get(access_token__token_checksum=_checksum(new_token))
        assert carried.mfa_verified_at == consented  # the consent's, not the refresh's time
        _assert_challenge(_delete(new_token, second), settings)
    second.refresh_from_db()
    assert second.status == PaymentMethod.Status.ACTIVE


def test_max_age_sends_a_stale_session_to_the_step_up_page_first(
    alice: User, card_app: Application, saved_card: Cards
) -> None:
    card = saved_card(APPROVED)
    device = give_totp_device(alice)
    browser = Client()
    browser.force_login(alice)
    mark_client_verified(browser, device)
    later = timezone.now() + timedelta(minutes=10)
    with time_machine.travel(later, tick=False):
        page, _verifier = _authorize(browser, card_app, max_age="300")
        assert page.status_code == 302
        assert page["Location"].startswith("/account/step-up/?next=%2Foauth%2Fauthorize%2F")
        # Confirmed again (as the step-up page does), the same request reaches the consent.
        mark_client_verified(browser, device)
        tokens = _consent_and_exchange(browser, card_app, max_age="300")
        assert _delete(tokens["access_token"], card).status_code == 204


def test_without_max_age_the_consent_does_not_ask_for_a_second_factor_again(
    alice: User, card_app: Application
) -> None:
    device = give_totp_device(alice)
    browser = Client()
    browser.force_login(alice)
    mark_client_verified(browser, device)
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=False):
        page, _verifier = _authorize(browser, card_app, state=secrets.token_hex(4))
        assert page.status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "tillit_consent_second_factor_at",
        "mfa_verified_at",
        "tillit_consent_authenticated_at",
        "authenticated_at",
    ],
)
def test_a_second_factor_smuggled_in_as_an_authorize_parameter_is_ignored(
    alice: User, card_app: Application, saved_card: Cards, settings: Any, name: str
) -> None:
    """oauthlib answers unknown attribute names from the request's parameters: a client
    naming the consent's credentials in the authorize URL must not forge a second factor
    (here for a customer who has none yet, then enrolls one and is asked to step up) or a
    later authentication than the session's."""
    card = saved_card(APPROVED)
    browser = Client()
    browser.force_login(alice)  # no second factor: the consent does not ask for one
    signed_in = timezone.now()
    forged = (signed_in + timedelta(days=1)).isoformat()
    page, verifier = _authorize(browser, card_app, **{name: forged})
    assert page.status_code == 200
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    answer = browser.post(
        f"/oauth/authorize/?{urlencode({name: forged})}", {**form, "allow": "on", name: forged}
    )
    code = parse_qs(urlsplit(answer["Location"]).query)["code"][0]
    tokens = _exchange(card_app, code, verifier)
    assert tokens.status_code == 200, tokens.content
    assert not ApiStepUp.objects.filter(mfa_verified_at__isnull=False).exists()
    assert all(
        row.authenticated_at is not None and row.authenticated_at < signed_in + timedelta(hours=1)
        for row in ApiStepUp.objects.all()
    )
    give_totp_device(alice)
    _assert_challenge(_delete(tokens.json()["access_token"], card), settings)
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE
