"""django-oauth-toolkit's endpoints we serve, under /oauth/: authorize, token, revoke,
and OpenID Connect's discovery (``/oauth/.well-known/openid-configuration``), JWKS and
userinfo. Left out on purpose: its application-management pages (clients are registered
by security officers in the admin only), introspection, the device flow, dynamic client
registration and RP-initiated logout."""

from __future__ import annotations

from django.urls import path, re_path
from oauth2_provider import views

from security.api.oauth_views import ConsentView

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", ConsentView.as_view(), name="authorize"),
    path("token/", views.TokenView.as_view(), name="token"),
    path("revoke_token/", views.RevokeTokenView.as_view(), name="revoke-token"),
    re_path(
        r"^\.well-known/openid-configuration$",
        views.ConnectDiscoveryInfoView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(".well-known/jwks.json", views.JwksInfoView.as_view(), name="jwks-info"),
    path("userinfo/", views.UserInfoView.as_view(), name="user-info"),
]
