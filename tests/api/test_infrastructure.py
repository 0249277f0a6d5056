"""The API's shared machinery through real requests: bearer tokens, scopes, the one error
shape, request ids, body limit, throttles and pagination. The views below exist only for
these tests (the real endpoints live in billing.api and payments.api); they are routed
in front of the project's own URLs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import include, path
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.urls import urlpatterns as project_urlpatterns
from security.api.principal import actor_of
from security.api.views import ApiGenericView, ApiView
from security.models import User, UserSession
from tests.api.conftest import bearer, error_of, issue_token

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.test_infrastructure")]


class _LineSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1)


class _GroupSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    lines = _LineSerializer(many=True, required=False)


class GroupsView(ApiView):
    """Creates a group (one effect per request) when the body is valid."""

    required_scopes: dict[str, list[str]] = {"POST": ["invoices:write"], "GET": ["invoices:read"]}

    def post(self, request: Request) -> Response:
        data = _GroupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = Group.objects.create(name=data.validated_data["name"])
        return Response({"id": group.pk, "name": group.name, "by": str(actor_of(request))}, 201)

    def get(self, request: Request) -> Response:
        return Response({"count": Group.objects.count()})


# Set by a test to hold GroupsView's POST until released (idempotency's concurrency test).
HOLD: dict[str, Any] = {}


class SlowGroupsView(GroupsView):
    def post(self, request: Request) -> Response:
        response = super().post(request)
        if HOLD:
            HOLD["entered"].set()
            HOLD["release"].wait(timeout=20)
        return response


OTHER_CALLS: list[Any] = []


class OtherView(ApiView):
    required_scopes: dict[str, list[str]] = {"POST": ["invoices:write"]}

    def post(self, request: Request) -> Response:
        OTHER_CALLS.append(request.data)
        return Response({"other": True}, 201)


class BrokenView(ApiView):
    required_scopes: dict[str, list[str]] = {"GET": []}

    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")


class UndeclaredView(ApiView):
    required_scopes: dict[str, list[str]] = {"GET": []}

    def get(self, request: Request) -> Response:
        return Response({})

    def delete(self, request: Request) -> Response:
        return Response({})


class _SessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = UserSession
        fields = ["session_key"]


class SessionsView(ApiGenericView):
    required_scopes: dict[str, list[str]] = {"GET": []}
    serializer_class = _SessionSerializer

    def get_queryset(self) -> Any:
        return UserSession.objects.all()

    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


urlpatterns = [
    path(
        "api/v1/test/",
        include(
            [
                path("groups", GroupsView.as_view()),
                path("slow-groups", SlowGroupsView.as_view()),
                path("other", OtherView.as_view()),
                path("broken", BrokenView.as_view()),
                path("undeclared", UndeclaredView.as_view()),
                path("sessions", SessionsView.as_view()),
            ]
        ),
    ),
    *project_urlpatterns,
]


def _post(client: Client, url: str, body: Any, token: str, **extra: Any) -> Any:
    return client.post(url, body, content_type="application/json", **bearer(token), **extra)


# -- who the token acts for ---------------------------------------------------------------


def test_me_names_the_integration_account_of_a_client_credentials_token(
    client: Client, integration: Application
) -> None:
    token = issue_token(integration, scopes="invoices:read")
    response = client.get("/api/v1/me", **bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "kind": "integration",
        "client_id": integration.client_id,
        "application": "ERP integration",
        "user": "api-erp",
        "scopes": ["invoices:read"],
    }


def test_me_names_the_customer_user_of_an_authorization_code_token(
    client: Client, customer_app: Application, alice: User
) -> None:
    token = issue_token(customer_app, user=alice, scopes="openid invoices:read")
    body = client.get("/api/v1/me", **bearer(token)).json()
    assert (body["kind"], body["user"]) == ("customer", "alice")


def test_a_token_a_staff_account_consented_to_is_refused(
    client: Client, customer_app: Application, clerk: User
) -> None:
    token = issue_token(customer_app, user=clerk, scopes="invoices:read")
    response = client.get("/api/v1/me", **bearer(token))
    assert response.status_code == 403
    assert error_of(response)["code"] == "not_allowed"


def test_a_client_credentials_app_without_an_integration_account_is_refused(
    client: Client,
) -> None:
    from tests.api.conftest import make_application

    token = issue_token(make_application("No account"), scopes="invoices:read")
    response = client.get("/api/v1/me", **bearer(token))
    assert response.status_code == 403
    assert "integration account" in error_of(response)["message"]


def test_a_token_of_a_deactivated_account_is_refused(
    client: Client, customer_app: Application, alice: User
) -> None:
    token = issue_token(customer_app, user=alice, scopes="invoices:read")
    User.objects.filter(pk=alice.pk).update(is_active=False)
    response = client.get("/api/v1/me", **bearer(token))
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_token"


# -- authentication errors ----------------------------------------------------------------


def test_no_token_is_a_401_with_a_bearer_challenge(client: Client) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    error = error_of(response)
    assert (error["type"], error["code"]) == ("authentication", "not_authenticated")


def test_a_session_is_no_authentication_for_the_api(client: Client, alice: User) -> None:
    client.force_login(alice)
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("how", ["expired", "revoked", "unknown"])
def test_expired_revoked_and_unknown_tokens_are_refused(
    client: Client, integration: Application, how: str
) -> None:
    token = issue_token(
        integration, scopes="invoices:read", expires_in=-1 if how == "expired" else 900
    )
    if how == "revoked":
        AccessToken.objects.filter(application=integration).get().revoke()
    if how == "unknown":
        token = token[::-1]
    response = client.get("/api/v1/me", **bearer(token))
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "invalid_token"
    assert token not in response.content.decode()


def test_a_token_in_the_query_string_is_not_accepted(
    client: Client, integration: Application
) -> None:
    token = issue_token(integration, scopes="invoices:read")
    assert client.get(f"/api/v1/me?access_token={token}").status_code == 401


# -- scopes -------------------------------------------------------------------------------


def test_a_missing_scope_is_a_403_naming_it(client: Client, integration: Application) -> None:
    token = issue_token(integration, scopes="invoices:read")
    response = _post(client, "/api/v1/test/groups", {"name": "x"}, token)
    assert response.status_code == 403
    error = error_of(response)
    assert (error["type"], error["code"]) == ("permission", "missing_scope")
    assert "invoices:write" in error["message"]
    assert not Group.objects.filter(name="x").exists()


def test_a_method_the_view_lists_no_scope_for_is_refused(
    client: Client, integration: Application
) -> None:
    token = issue_token(integration, scopes="invoices:read invoices:write")
    response = client.delete("/api/v1/test/undeclared", **bearer(token))
    assert response.status_code == 403
    assert error_of(response)["code"] == "scope_not_declared"


# -- bad input ----------------------------------------------------------------------------


def test_malformed_json_is_a_400(client: Client, integration: Application) -> None:
    token = issue_token(integration, scopes="invoices:write")
    response = _post(client, "/api/v1/test/groups", '{"name": ', token)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"]) == ("invalid_request", "malformed_body")


def test_nan_is_not_a_number(client: Client, integration: Application) -> None:
    token = issue_token(integration, scopes="invoices:write")
    response = _post(client, "/api/v1/test/groups", '{"name": "a", "x": NaN}', token)
    assert response.status_code == 400


def test_a_form_body_is_a_415(client: Client, integration: Application) -> None:
    token = issue_token(integration, scopes="invoices:write")
    response = client.post("/api/v1/test/groups", {"name": "x"}, **bearer(token))
    assert response.status_code == 415, response.content
    assert error_of(response)["code"] == "unsupported_media_type"
    assert not Group.objects.filter(name="x").exists()


def test_a_huge_body_is_a_413_before_it_is_read(
    client: Client, integration: Application, settings: Any
) -> None:
    settings.API_MAX_BODY_BYTES = 2048
    token = issue_token(integration, scopes="invoices:write")
    response = _post(client, "/api/v1/test/groups", {"name": "x", "pad": "y" * 5000}, token)
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"
    assert not Group.objects.filter(name="x").exists()


def test_validation_errors_name_every_field(client: Client, integration: Application) -> None:
    token = issue_token(integration, scopes="invoices:write")
    body = {"lines": [{"quantity": 2}, {"quantity": "many"}]}
    response = _post(client, "/api/v1/test/groups", body, token)
    assert response.status_code == 400
    error = error_of(response)
    fields = {e["field"] for e in error["errors"]}
    assert fields == {"name", "lines[1].quantity"}
    assert error["field"] in fields


def test_an_unknown_api_path_is_a_404_in_the_shape(client: Client) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_endpoint"


def test_a_wrong_method_is_a_405_in_the_shape(client: Client, integration: Application) -> None:
    token = issue_token(integration)
    response = client.put("/api/v1/me", {}, content_type="application/json", **bearer(token))
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_a_failure_is_a_500_without_its_details(
    integration: Application, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(raise_request_exception=False)
    token = issue_token(integration)
    response = client.get("/api/v1/test/broken", **bearer(token))
    assert response.status_code == 500
    error = error_of(response)
    assert (error["type"], error["code"]) == ("server", "internal_error")
    assert "secret internal detail" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()


# -- request ids --------------------------------------------------------------------------


def test_a_sane_request_id_is_echoed_and_an_insane_one_replaced(client: Client) -> None:
    kept = client.get("/api/v1/me", HTTP_X_REQUEST_ID="erp-42:retry.1")
    assert kept["X-Request-Id"] == "erp-42:retry.1"
    assert kept.json()["error"]["request_id"] == "erp-42:retry.1"
    replaced = client.get("/api/v1/me", HTTP_X_REQUEST_ID="a\r\nSet-Cookie: x" + "y" * 80)
    assert replaced["X-Request-Id"].startswith("req_")


def test_every_page_gets_a_request_id(client: Client) -> None:
    assert client.get("/account/login/")["X-Request-Id"].startswith("req_")


# -- throttles ----------------------------------------------------------------------------


def _fifteen_seconds_into_this_minute() -> datetime:
    """15 s into the current minute (windows are calendar minutes; tokens live 15 min)."""
    return timezone.now().replace(second=15, microsecond=0)


def test_a_client_over_its_rate_gets_429_with_retry_after(
    client: Client, integration: Application, settings: Any
) -> None:
    settings.API_THROTTLE_CLIENT_RATE = "3/minute"
    token = issue_token(integration)
    with time_machine.travel(_fifteen_seconds_into_this_minute(), tick=False):
        statuses = [client.get("/api/v1/me", **bearer(token)).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        response = client.get("/api/v1/me", **bearer(token))
        assert response.status_code == 429
        assert response["Retry-After"] == "45"  # the rest of the minute
        assert error_of(response)["type"] == "rate_limit"
    next_minute = _fifteen_seconds_into_this_minute() + timedelta(seconds=45)
    with time_machine.travel(next_minute, tick=False):
        assert client.get("/api/v1/me", **bearer(token)).status_code == 200  # a new minute


def test_a_user_over_its_rate_is_throttled_whichever_app_asks(
    client: Client, customer_app: Application, alice: User, bob: User, settings: Any
) -> None:
    from tests.api.conftest import make_application

    settings.API_THROTTLE_USER_RATE = "2/minute"
    other_app = make_application("Other app", grant=Application.GRANT_AUTHORIZATION_CODE)
    first = issue_token(customer_app, user=alice)
    second = issue_token(other_app, user=alice)
    with time_machine.travel(_fifteen_seconds_into_this_minute(), tick=False):
        assert client.get("/api/v1/me", **bearer(first)).status_code == 200
        assert client.get("/api/v1/me", **bearer(second)).status_code == 200
        assert client.get("/api/v1/me", **bearer(second)).status_code == 429
        # Bob, through the same app, has his own allowance.
        bobs = issue_token(customer_app, user=bob)
        assert client.get("/api/v1/me", **bearer(bobs)).status_code == 200


# -- pagination ---------------------------------------------------------------------------


def test_lists_page_by_cursor_with_a_bounded_limit(
    client: Client, integration: Application, alice: User, settings: Any
) -> None:
    from django.utils import timezone

    now = timezone.now()
    for n in range(5):
        UserSession.objects.create(
            user=alice, session_key=f"s{n}", created_at=now, last_seen_at=now
        )
    token = issue_token(integration)
    first = client.get("/api/v1/test/sessions?limit=2", **bearer(token)).json()
    assert len(first["results"]) == 2
    second = client.get(first["next"], **bearer(token)).json()
    seen = {r["session_key"] for r in first["results"] + second["results"]}
    assert len(seen) == 4
    settings.API_MAX_PAGE_SIZE = 3
    response = client.get("/api/v1/test/sessions?limit=4", **bearer(token))
    assert response.status_code == 400
    assert error_of(response)["field"] == "limit"
    bad_cursor = client.get("/api/v1/test/sessions?cursor=bm9wZQ", **bearer(token))
    assert bad_cursor.status_code == 400
    assert error_of(bad_cursor)["field"] == "cursor"
