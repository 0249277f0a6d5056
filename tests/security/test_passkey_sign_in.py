"""Issue 17, item 11: an anonymous passkey sign-in ended in a server error (500).

Passwordless sign-in was on by the library's default, and completing it anonymously
raised NotAllowed. It is now off by decision (docs/decisions.md, 31): a passkey is a
second factor only, and an anonymous ceremony gets a JSON 403 at every step.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from django.urls import reverse
from django_otp_webauthn.exceptions import PasswordlessLoginDisabled

from security.views import PasskeyAuthenticationCompleteView

pytestmark = pytest.mark.django_db


def test_passwordless_sign_in_is_off_by_decision() -> None:
    assert settings.OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN is False


@pytest.mark.parametrize(
    "step",
    [
        "otp_webauthn:credential-authentication-begin",
        "otp_webauthn:credential-authentication-complete",
    ],
)
def test_an_anonymous_passkey_ceremony_is_refused_with_a_403_not_a_500(step: str) -> None:
    client = Client(raise_request_exception=False)

    response = client.post(reverse(step), data=json.dumps({}), content_type="application/json")

    assert response.status_code == 403
    assert response.json()["code"] == "passwordless_login_disabled"
    assert "_auth_user_id" not in client.session


def test_completing_anonymously_never_raises_a_server_error() -> None:
    """Should an anonymous request reach the end of the ceremony, the answer is the
    library's 403 (it raised NotAllowed, a 500, before)."""
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().post("/webauthn/authentication/complete/")
    request.user = AnonymousUser()
    view = PasskeyAuthenticationCompleteView()
    view.request = request

    with pytest.raises(PasswordlessLoginDisabled) as caught:
        view.complete_auth(device=object())
    assert view.handle_exception(caught.value).status_code == 403
