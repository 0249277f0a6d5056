"""The OAuth 2.0 / OpenID Connect flows end to end, through the real endpoints with
registered clients: authorization code with PKCE (S256 only), client credentials,
refresh rotation with reuse detection, revocation, discovery, JWKS, userinfo and the
RS256 ID token; each issue, refresh, reuse and revocation audited without the token."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from jwcrypto import jwk
from jwcrypto import jwt as jose_jwt
from oauth2_provider.models import AccessToken, Application, RefreshToken

from audit import SYSTEM
from audit.models import AuditEvent
from security.models import ApiClient, User
from security.oidc_key_files import published_retired_keys
from security.services.oidc_keys import rotate_signing_key
from tests.api.conftest import SECRET, bearer, error_of, registered
from tests.factories import audit_events, make_user
from tests.mfa_helpers import give_totp_device

pytestmark = pytest.mark.django_db
REDIRECT = "https://app.example/callback"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@pytest.fixture
def app() -> Application:
    return registered(
        "Alice's bookkeeping app",
        kind=ApiClient.Kind.CUSTOMER_APP,
        scopes=["openid", "profile", "email", "invoices:read"],
        redirect=REDIRECT,
    )


@pytest.fixture
def erp() -> Application:
    account = make_user("api-erp")
    return registered(
        "ERP",
        kind=ApiClient.Kind.INTEGRATION,
        scopes=["invoices:read", "invoices:write"],
        user=account,
    )


def _authorize_params(
    app: Application, challenge: str | None, method: str = "S256"
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email invoices:read",
        "state": "st-1",
        "nonce": "n-1",
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method=method)
    return params


def _consent(browser: Client, app: Application, challenge: str | None, method: str = "S256") -> Any:
    params = _authorize_params(app, challenge, method)
    page = browser.get("/oauth/authorize/", params)
    if page.status_code != 200 or "form" not in page.context:
        return page
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    return browser.post("/oauth/authorize/", {**form, "allow": "on"})


def _code_from(response: Any) -> str:
    assert response.status_code == 302, response.content[:500]
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def _exchange(app: Application, code: str, verifier: str) -> Any:
    return Client().post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )


def _refresh(app: Application, refresh_token: str) -> Any:
    return Client().post(
        "/oauth/token/",
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app.client_id},
    )


def _tokens_for(alice: User, app: Application) -> dict[str, Any]:
    browser = Client()
    browser.force_login(alice)
    verifier, challenge = _pkce()
    code = _code_from(_consent(browser, app, challenge))
    answer = _exchange(app, code, verifier)
    assert answer.status_code == 200, answer.content
    return dict(answer.json())


# -- authorization code + PKCE ------------------------------------------------------------


def test_authorization_code_with_pkce_gives_a_token_for_the_customer(
    alice: User, app: Application
) -> None:
    tokens = _tokens_for(alice, app)
    assert tokens["expires_in"] == 900
    assert set(tokens["scope"].split()) == {"openid", "profile", "email", "invoices:read"}
    me = Client().get("/api/v1/me", **bearer(tokens["access_token"])).json()
    assert (me["kind"], me["user"]) == ("customer", "alice")


def test_the_id_token_is_rs256_signed_by_the_published_key(alice: User, app: Application) -> None:
    tokens = _tokens_for(alice, app)
    head = tokens["id_token"].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert header["alg"] == "RS256"
    keys = jwk.JWKSet.from_json(Client().get("/oauth/.well-known/jwks.json").content)
    verified = jose_jwt.JWT(jwt=tokens["id_token"], key=keys, algs=["RS256"])
    claims = json.loads(verified.claims)
    assert claims["aud"] == app.client_id
    assert claims["sub"] == str(alice.pk)
    assert claims["nonce"] == "n-1"
    assert claims["email"] == alice.email


def _claims(id_token: str) -> dict[str, Any]:
    keys = jwk.JWKSet.from_json(Client().get("/oauth/.well-known/jwks.json").content)
    return dict(json.loads(jose_jwt.JWT(jwt=id_token, key=keys, algs=["RS256"]).claims))


def test_the_id_tokens_auth_time_is_the_consenting_sessions_sign_in(
    alice: User, app: Application
) -> None:
    """Not the user's last sign-in anywhere: a later sign-in in another browser does not
    make the token rest on it, and a refreshed ID token keeps the consent's moment."""
    signed_in = timezone.now() - timedelta(hours=2)
    with time_machine.travel(signed_in, tick=False):
        browser = Client()
        browser.force_login(alice)
    with time_machine.travel(signed_in + timedelta(minutes=10), tick=False):
        Client().force_login(alice)  # elsewhere, later: the user's last_login moves
        verifier, challenge = _pkce()
        code = _code_from(_consent(browser, app, challenge))
        first = _exchange(app, code, verifier).json()
        refreshed = _refresh(app, first["refresh_token"]).json()
        first_claims, refreshed_claims = _claims(first["id_token"]), _claims(refreshed["id_token"])
    alice.refresh_from_db()

    assert first_claims["auth_time"] == int(signed_in.timestamp())
    assert alice.last_login is not None
    assert int(alice.last_login.timestamp()) != int(signed_in.timestamp())
    assert refreshed_claims["auth_time"] == int(signed_in.timestamp())


def test_userinfo_answers_for_the_token(alice: User, app: Application) -> None:
    tokens = _tokens_for(alice, app)
    info = Client().get("/oauth/userinfo/", **bearer(tokens["access_token"])).json()
    assert info["sub"] == str(alice.pk)
    assert info["email"] == alice.email


def _kid(id_token: str) -> str:
    head = id_token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


def _restart_with_keys_on_disk(settings: Any) -> None:
    """What a web worker's start reads (config/settings.py): the current key from its file,
    the retired keys inside their overlap."""
    current = settings.OIDC_KEY_FILE.read_text()
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_RSA_PRIVATE_KEY": current,
        "OIDC_RSA_PRIVATE_KEYS_INACTIVE": published_retired_keys(
            settings.OIDC_RETIRED_KEYS_DIR,
            overlap=timedelta(hours=settings.OIDC_RETIRED_KEY_HOURS),
            current=current,
        ),
    }


def test_id_tokens_signed_before_and_after_a_key_rotation_both_verify(
    alice: User, app: Application, settings: Any, tmp_path: Path
) -> None:
    settings.OIDC_KEY_FILE = tmp_path / "oidc_rsa.pem"
    settings.OIDC_KEY_FILE.write_text(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"])
    settings.OIDC_RETIRED_KEYS_DIR = tmp_path / "oidc-retired"
    before = _tokens_for(alice, app)["id_token"]
    rotation = rotate_signing_key(by=SYSTEM)
    _restart_with_keys_on_disk(settings)
    after = _tokens_for(alice, app)["id_token"]
    assert (_kid(before), _kid(after)) == (rotation.retired_key_id, rotation.key_id)
    assert _claims(before)["sub"] == _claims(after)["sub"] == str(alice.pk)
    published = {key["kid"] for key in Client().get("/oauth/.well-known/jwks.json").json()["keys"]}
    assert published == {rotation.key_id, rotation.retired_key_id}
    # Once the overlap is over, a restarted worker publishes the new key alone.
    with time_machine.travel(timezone.now() + timedelta(hours=settings.OIDC_RETIRED_KEY_HOURS)):
        _restart_with_keys_on_disk(settings)
        keys = Client().get("/oauth/.well-known/jwks.json").json()["keys"]
    assert [key["kid"] for key in keys] == [rotation.key_id]


def test_discovery_names_our_endpoints_and_only_safe_choices(client: Client) -> None:
    document = client.get("/oauth/.well-known/openid-configuration").json()
    assert document["issuer"].endswith("/oauth")
    assert document["jwks_uri"].endswith("/oauth/.well-known/jwks.json")
    assert document["response_types_supported"] == ["code"]
    assert (
        document["id_token_signing_alg_values_supported"] == ["HS256", "RS256"]
        or "RS256" in document["id_token_signing_alg_values_supported"]
    )
    assert document["code_challenge_methods_supported"] == ["S256"]


def test_a_wrong_verifier_gets_no_token(alice: User, app: Application) -> None:
    browser = Client()
    browser.force_login(alice)
    _verifier, challenge = _pkce()
    code = _code_from(_consent(browser, app, challenge))
    answer = _exchange(app, code, secrets.token_urlsafe(48))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()


def test_a_request_without_a_challenge_is_refused(alice: User, app: Application) -> None:
    browser = Client()
    browser.force_login(alice)
    answer = _consent(browser, app, None)
    location = answer.get("Location", "")
    assert "code=" not in location
    assert answer.status_code in (302, 400)
    if answer.status_code == 302:
        assert "error=invalid_request" in location


def test_the_plain_method_is_refused(alice: User, app: Application) -> None:
    browser = Client()
    browser.force_login(alice)
    verifier = secrets.token_urlsafe(48)
    answer = _consent(browser, app, verifier, method="plain")
    assert "code=" not in answer.get("Location", "")


def test_a_visitor_is_sent_to_sign_in_first(app: Application) -> None:
    _verifier, challenge = _pkce()
    answer = Client().get("/oauth/authorize/", _authorize_params(app, challenge))
    assert answer.status_code == 302
    assert answer["Location"].startswith("/account/login/")


def test_a_customer_with_a_second_factor_must_pass_it_before_consenting(
    alice: User, app: Application
) -> None:
    give_totp_device(alice)
    browser = Client()
    browser.force_login(alice)
    _verifier, challenge = _pkce()
    answer = browser.get("/oauth/authorize/", _authorize_params(app, challenge))
    assert answer.status_code == 302
    assert answer["Location"].startswith("/account/verify/")


def test_staff_cannot_consent(app: Application) -> None:
    clerk = make_user("clerk2", is_staff=True)
    browser = Client()
    browser.force_login(clerk)
    from tests.mfa_helpers import mark_client_verified

    mark_client_verified(browser, give_totp_device(clerk))
    _verifier, challenge = _pkce()
    assert browser.get("/oauth/authorize/", _authorize_params(app, challenge)).status_code == 403


def test_a_scope_the_client_was_not_allowed_is_refused(alice: User, app: Application) -> None:
    browser = Client()
    browser.force_login(alice)
    _verifier, challenge = _pkce()
    params = {**_authorize_params(app, challenge), "scope": "openid payments:write"}
    answer = browser.get("/oauth/authorize/", params)
    assert "code=" not in answer.get("Location", "")
    assert answer.status_code in (302, 400)


def test_the_consent_page_is_in_swedish_for_a_swedish_reader(alice: User, app: Application) -> None:
    browser = Client()
    browser.force_login(alice)
    _verifier, challenge = _pkce()
    page = browser.get(
        "/oauth/authorize/", _authorize_params(app, challenge), HTTP_ACCEPT_LANGUAGE="sv"
    )
    text = page.content.decode()
    assert "Alice's bookkeeping app" in text or "Alice&#x27;s bookkeeping app" in text
    assert "Tillåt" in text


# -- client credentials -------------------------------------------------------------------


def test_client_credentials_give_a_token_acting_as_the_integration(erp: Application) -> None:
    answer = Client().post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "scope": "invoices:read"},
        HTTP_AUTHORIZATION="Basic "
        + base64.b64encode(f"{erp.client_id}:{SECRET}".encode()).decode(),
    )
    assert answer.status_code == 200, answer.content
    tokens = answer.json()
    assert "refresh_token" not in tokens
    me = Client().get("/api/v1/me", **bearer(tokens["access_token"])).json()
    assert (me["kind"], me["user"], me["scopes"]) == ("integration", "api-erp", ["invoices:read"])


def test_a_wrong_client_secret_gets_no_token(erp: Application) -> None:
    answer = Client().post(
        "/oauth/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{erp.client_id}:wrong".encode()).decode(),
    )
    assert answer.status_code == 401
    assert not AccessToken.objects.exists()


def test_an_integration_cannot_ask_for_more_than_it_was_allowed(erp: Application) -> None:
    answer = Client().post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "scope": "payments:write"},
        HTTP_AUTHORIZATION="Basic "
        + base64.b64encode(f"{erp.client_id}:{SECRET}".encode()).decode(),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"


def test_the_password_grant_is_refused(erp: Application, alice: User) -> None:
    answer = Client().post(
        "/oauth/token/",
        {"grant_type": "password", "username": "alice", "password": "correct horse battery staple"},
        HTTP_AUTHORIZATION="Basic "
        + base64.b64encode(f"{erp.client_id}:{SECRET}".encode()).decode(),
    )
    assert answer.status_code in (400, 401)
    assert not AccessToken.objects.exists()


# -- refresh rotation and reuse -----------------------------------------------------------


def test_a_refresh_gives_a_new_pair_and_reuse_revokes_the_family(
    alice: User, app: Application
) -> None:
    first = _tokens_for(alice, app)
    second = _refresh(app, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    third = _refresh(app, second["refresh_token"]).json()
    assert Client().get("/api/v1/me", **bearer(third["access_token"])).status_code == 200

    reuse = _refresh(app, first["refresh_token"])  # the stolen, already-used one

    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # The whole family is revoked: the newest refresh token and access token are dead too.
    assert _refresh(app, third["refresh_token"]).status_code == 400
    response = Client().get("/api/v1/me", **bearer(third["access_token"]))
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_token"
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert len(audit_events("api.refresh_token_reused")) >= 1


def test_a_revoked_token_is_refused(alice: User, app: Application) -> None:
    tokens = _tokens_for(alice, app)
    answer = Client().post(
        "/oauth/revoke_token/",
        {
            "token": tokens["access_token"],
            "token_type_hint": "access_token",
            "client_id": app.client_id,
        },
    )
    assert answer.status_code == 200
    response = Client().get("/api/v1/me", **bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert len(audit_events("api.token_revoked")) == 1


# -- audit --------------------------------------------------------------------------------


def test_issue_and_refresh_are_audited_without_any_token(alice: User, app: Application) -> None:
    tokens = _tokens_for(alice, app)
    refreshed = _refresh(app, tokens["refresh_token"]).json()
    issued = audit_events("api.token_issued")
    assert len(issued) == 1
    assert issued[0].details["client_id"] == app.client_id
    assert issued[0].details["grant_type"] == "authorization_code"
    assert len(audit_events("api.token_refreshed")) == 1
    assert len(audit_events("api.consent_given")) == 1
    everything = json.dumps([e.details for e in AuditEvent.objects.all()])
    for secret in (
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
    ):
        assert secret not in everything


def test_tokens_are_stored_as_checksums_only(alice: User, app: Application) -> None:
    tokens = _tokens_for(alice, app)
    assert not AccessToken.objects.filter(token=tokens["access_token"]).exists()
    assert set(AccessToken.objects.values_list("token", flat=True)) == {""}
    assert set(RefreshToken.objects.values_list("token", flat=True)) == {""}
