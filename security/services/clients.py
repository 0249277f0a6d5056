"""Registering, changing and removing API clients (security officers only, with step-up,
audited). django-oauth-toolkit's ``Application`` holds the OAuth facts (its secret hashed),
``security.ApiClient`` what kind of client it is and which scopes it may be granted.

A server integration (client credentials) acts through its own integration account: a
service account without a password, created with the client, holding the permissions
its scopes stand for (``SCOPE_PERMISSIONS``; services check those, security.api.principal).
A customer app (authorization code + PKCE) is public: no secret, exact redirect URIs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import slugify
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

from audit import record
from security.exceptions import NotAllowed, SecurityError
from security.models import ApiClient
from security.services.mfa import require_step_up

MANAGE_PERMISSION = "security.manage_api_clients"
OIDC_SCOPES = frozenset({"openid", "profile", "email"})


def all_scopes() -> frozenset[str]:
    """Every scope the server knows (``OAUTH2_PROVIDER["SCOPES"]``)."""
    return frozenset(settings.OAUTH2_PROVIDER["SCOPES"])  # type: ignore[call-overload]


def api_scopes() -> frozenset[str]:
    """The resource scopes (everything but OpenID Connect's)."""
    return all_scopes() - OIDC_SCOPES


# What an integration account may do, by scope: the permissions the services check.
# A permission that does not exist (yet) is skipped.
SCOPE_PERMISSIONS: dict[str, set[str]] = {
    "customers:read": {"billing.view_customer"},
    "invoices:read": {
        "billing.view_invoice",
        "billing.view_invoiceline",
        "documents.download_invoice_documents",
        "documents.verify_invoice_documents",
    },
    "invoices:write": {
        "billing.add_invoice",
        "billing.change_invoice",
        "billing.add_invoiceline",
        "billing.change_invoiceline",
    },
    "payments:read": {"payments.view_payment", "payments.view_refund"},
    "payments:write": {"payments.add_payment", "payments.refund_payment"},
    "payment_methods:read": {"payments.view_paymentmethod"},
    "payment_methods:write": {"payments.add_paymentmethod", "payments.delete_paymentmethod"},
    "events:read": {"webhooks.view_event"},
}


class InvalidClient(SecurityError):
    """A client's registration or change is refused; ``field`` names what is wrong."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Registered:
    """A new client and its secret: shown once, never stored in clear ("" for public apps)."""

    client: ApiClient
    client_secret: str


def _check(by: Any, request: HttpRequest | None) -> None:
    if not (getattr(by, "is_active", False) and by.has_perm(MANAGE_PERMISSION)):
        raise NotAllowed("api client: needs the Security officer role")
    require_step_up(request, by)


def _clean_scopes(kind: str, scopes: list[str]) -> list[str]:
    allowed = api_scopes() if kind == ApiClient.Kind.INTEGRATION else all_scopes()
    unknown = sorted(set(scopes) - allowed)
    if unknown:
        raise InvalidClient(
            f"not a scope this kind of client may hold: {', '.join(unknown)}", field="scopes"
        )
    if not set(scopes) - OIDC_SCOPES:
        raise InvalidClient("choose at least one API scope", field="scopes")
    return sorted(set(scopes))


def _clean_redirect_uris(kind: str, uris: str) -> str:
    listed = uris.split()
    if kind == ApiClient.Kind.INTEGRATION:
        if listed:
            raise InvalidClient("a server integration has no redirect URIs", field="redirect_uris")
        return ""
    if not listed:
        raise InvalidClient(
            "an app for customers needs at least one redirect URI", field="redirect_uris"
        )
    for uri in listed:
        parts = urlsplit(uri)
        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (
            parts.scheme == "http" and local and not settings.PRODUCTION
        ):
            raise InvalidClient(f"{uri} must be an https:// URL", field="redirect_uris")
        if parts.fragment or not parts.hostname:
            raise InvalidClient(
                f"{uri} is not an absolute URL without a fragment", field="redirect_uris"
            )
    return " ".join(listed)


def grant_scope_permissions(account: Any, scopes: list[str]) -> None:
    wanted = set().union(*(SCOPE_PERMISSIONS.get(s, set()) for s in scopes))
    query = Q(pk__in=[])
    for name in wanted:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    account.user_permissions.set(Permission.objects.filter(query))


def register_api_client(
    *,
    name: str,
    kind: str,
    scopes: list[str],
    redirect_uris: str = "",
    by: Any,
    request: HttpRequest | None,
) -> Registered:
    """Register a client (and, for an integration, its integration account); the secret is
    returned once. Audited ``api.client_registered``."""
    _check(by, request)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidClient("give a name of 1 to 200 characters", field="name")
    if kind not in ApiClient.Kind.values:
        raise InvalidClient("choose a server integration or an app for customers", field="kind")
    scopes = _clean_scopes(kind, scopes)
    redirect_uris = _clean_redirect_uris(kind, redirect_uris)
    integration = kind == ApiClient.Kind.INTEGRATION
    secret = generate_client_secret() if integration else ""
    with transaction.atomic():
        account = None
        if integration:
            username = f"api-{slugify(name)[:40]}-{secrets.token_hex(3)}"
            account = get_user_model().objects.create(username=username, is_active=True)
            account.set_unusable_password()
            account.save(update_fields=["password"])
            grant_scope_permissions(account, scopes)
        application = Application(
            name=name,
            user=account,
            client_type=Application.CLIENT_CONFIDENTIAL
            if integration
            else Application.CLIENT_PUBLIC,
            authorization_grant_type=(
                Application.GRANT_CLIENT_CREDENTIALS
                if integration
                else Application.GRANT_AUTHORIZATION_CODE
            ),
            redirect_uris=redirect_uris,
            client_secret=secret or generate_client_secret(),
            hash_client_secret=True,
            algorithm="" if integration else Application.RS256_ALGORITHM,
            skip_authorization=False,
        )
        application.save()
        client = ApiClient.objects.create(
            application=application,
            kind=kind,
            allowed_scopes=scopes,
            created_by=by,
            created_at=timezone.now(),
        )
        record(
            "api.client_registered",
            actor=by,
            obj=application,
            request=request,
            client_id=application.client_id,
            name=name,
            kind=kind,
            scopes=scopes,
            integration_account=account.get_username() if account else "",
        )
    return Registered(client=client, client_secret=secret)


def revoke_tokens(applications: Any = None, users: Any = None) -> int:
    """Revoke every token of the given applications or users (both None: every token): access
    tokens, ID tokens and pending codes deleted, refresh tokens marked revoked. How many
    access and refresh tokens ended. The caller checks, locks and audits."""
    tokens = Q()
    if applications is not None:
        tokens &= Q(application__in=applications)
    if users is not None:
        tokens &= Q(user__in=users)
    now = timezone.now()
    refreshed = RefreshToken.objects.filter(tokens, revoked__isnull=True).update(revoked=now)
    ended, _ = AccessToken.objects.filter(tokens).delete()
    IDToken.objects.filter(tokens).delete()
    Grant.objects.filter(tokens).delete()
    return int(refreshed) + int(ended)


def update_api_client(
    client: ApiClient,
    *,
    name: str,
    scopes: list[str],
    redirect_uris: str,
    by: Any,
    request: HttpRequest | None,
) -> ApiClient:
    """Change a client's name, scopes or redirect URIs; taking a scope away revokes the
    client's tokens (they may hold it). Audited ``api.client_changed``."""
    _check(by, request)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidClient("give a name of 1 to 200 characters", field="name")
    scopes = _clean_scopes(client.kind, scopes)
    redirect_uris = _clean_redirect_uris(client.kind, redirect_uris)
    with transaction.atomic():
        locked = (
            ApiClient.objects.select_for_update().select_related("application").get(pk=client.pk)
        )
        application = locked.application
        taken = sorted(set(locked.allowed_scopes) - set(scopes))
        changes = sorted(
            field
            for field, changed in (
                ("name", application.name != name),
                ("scopes", locked.allowed_scopes != scopes),
                ("redirect_uris", application.redirect_uris != redirect_uris),
            )
            if changed
        )
        application.name = name
        application.redirect_uris = redirect_uris
        application.save(update_fields=["name", "redirect_uris", "updated"])
        locked.allowed_scopes = scopes
        locked.save(update_fields=["allowed_scopes"])
        if application.user is not None:
            grant_scope_permissions(application.user, scopes)
        revoked = revoke_tokens(applications=[application]) if taken else 0
        record(
            "api.client_changed",
            actor=by,
            obj=application,
            request=request,
            client_id=application.client_id,
            changed=changes,
            scopes_taken=taken,
            revoked=revoked,
        )
    return locked


def remove_api_client(client: ApiClient, *, by: Any, request: HttpRequest | None) -> None:
    """Remove a client: its tokens end, its integration account is deactivated (kept for the
    audit trail). Audited ``api.client_removed``."""
    _check(by, request)
    with transaction.atomic():
        application = Application.objects.select_for_update().get(pk=client.application_id)
        revoked = revoke_tokens(applications=[application])
        account = application.user
        if account is not None and client.kind == ApiClient.Kind.INTEGRATION:
            get_user_model().objects.filter(pk=account.pk).update(is_active=False)
        record(
            "api.client_removed",
            actor=by,
            obj=application,
            request=request,
            client_id=application.client_id,
            name=application.name,
            revoked=revoked,
        )
        application.delete()
