"""The demo's API clients (refused in production): a server integration (client
credentials) whose secret is published like the demo passwords, and a public app for the
demo customers (authorization code + PKCE, redirecting to a local callback). Idempotent."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import Application

from audit import SYSTEM, record
from security.exceptions import NotAllowed
from security.models import ApiClient
from security.services.clients import grant_scope_permissions

DEMO_ERP_ID = "demo-erp"
DEMO_APP_ID = "demo-customer-app"
DEMO_REDIRECT = "http://127.0.0.1:8765/callback"
DEMO_ERP_SCOPES = ["customers:read", "invoices:read", "invoices:write", "payments:read"]
DEMO_APP_SCOPES = ["openid", "profile", "email", "invoices:read", "payments:read", "payments:write"]


@dataclass(frozen=True)
class DemoClients:
    erp_client_id: str
    erp_secret: str
    app_client_id: str
    redirect_uri: str


def _demo_secret() -> str:
    return hashlib.sha256(b"tillit-demo:api:demo-erp").hexdigest()


def ensure_demo_api_clients() -> DemoClients:
    """Register the demo's two clients if missing; what to print about them."""
    if settings.PRODUCTION:
        raise NotAllowed("demo: published client secrets never exist in production")
    secret = _demo_secret()
    with transaction.atomic():
        if not Application.objects.filter(client_id=DEMO_ERP_ID).exists():
            account, _ = get_user_model().objects.get_or_create(username="api-demo-erp")
            account.set_unusable_password()
            account.save(update_fields=["password"])
            grant_scope_permissions(account, DEMO_ERP_SCOPES)
            erp = Application.objects.create(
                client_id=DEMO_ERP_ID,
                name="Demo ERP (client credentials)",
                user=account,
                client_type=Application.CLIENT_CONFIDENTIAL,
                authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
                client_secret=secret,
                hash_client_secret=True,
            )
            ApiClient.objects.create(
                application=erp,
                kind=ApiClient.Kind.INTEGRATION,
                allowed_scopes=DEMO_ERP_SCOPES,
                created_at=timezone.now(),
            )
            record("api.client_registered", actor=SYSTEM, obj=erp, client_id=DEMO_ERP_ID, demo=True)
        if not Application.objects.filter(client_id=DEMO_APP_ID).exists():
            app = Application.objects.create(
                client_id=DEMO_APP_ID,
                name="Demo customer app",
                client_type=Application.CLIENT_PUBLIC,
                authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                redirect_uris=DEMO_REDIRECT,
                algorithm=Application.RS256_ALGORITHM,
            )
            ApiClient.objects.create(
                application=app,
                kind=ApiClient.Kind.CUSTOMER_APP,
                allowed_scopes=DEMO_APP_SCOPES,
                created_at=timezone.now(),
            )
            record("api.client_registered", actor=SYSTEM, obj=app, client_id=DEMO_APP_ID, demo=True)
    return DemoClients(DEMO_ERP_ID, secret, DEMO_APP_ID, DEMO_REDIRECT)


def format_demo_clients(clients: DemoClients, base_url: str) -> str:
    """How to get a token with the demo clients (never a token itself)."""
    return "\n".join(
        [
            "API clients (demo only; docs/api.md):",
            f"  Server integration: client id {clients.erp_client_id}, secret {clients.erp_secret}",
            f"    curl -u {clients.erp_client_id}:{clients.erp_secret}"
            f' -d grant_type=client_credentials -d scope="invoices:read" {base_url}/oauth/token/',
            f"  Customer app (PKCE, S256): client id {clients.app_client_id},"
            f" redirect {clients.redirect_uri}",
            f"    {base_url}/oauth/authorize/?response_type=code&client_id={clients.app_client_id}"
            f"&redirect_uri={clients.redirect_uri}&scope=openid%20invoices:read"
            "&code_challenge=<S256 of your verifier>&code_challenge_method=S256&state=<random>",
            f"  Reference: {base_url}/api/docs/",
        ]
    )
