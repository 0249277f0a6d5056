"""Who an API request acts as, for the services and the audit log (docs/api.md, "Who acts").

A token issued by the authorization-code flow acts for the customer user who consented:
the services see that user (``security.User``) exactly as they do in the portal, and the
billing API finds the user's customer with billing's own selector, so a customer's token
sees only that customer's data. A client-credentials token acts for the application as
an integration: its integration account (the application's ``user``, a service account
without a password that the security officer creates with the client) is the actor, and
its permissions (granted from the application's scopes, ``security.services.clients``) are
what the services check. The token's scopes limit further what the API lets it reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from security.exceptions import NotAllowed

if TYPE_CHECKING:
    from oauth2_provider.models import AbstractAccessToken, AbstractApplication

    from security.actors import Actor
    from security.models import User

Kind = Literal["customer", "integration"]


@dataclass(frozen=True)
class ApiPrincipal:
    """The request's token, read once: its application, the user it acts for (a customer
    user, or the integration account), its scopes and the kind of actor."""

    application: AbstractApplication
    user: User
    scopes: frozenset[str]
    kind: Kind

    @property
    def actor(self) -> Actor:
        """The ``by=`` of every service call the request makes."""
        return self.user

    @property
    def client_id(self) -> str:
        return str(self.application.client_id)


def principal_from_token(token: AbstractAccessToken) -> ApiPrincipal:
    """The principal of a valid access token; ``NotAllowed`` (403) for a token a staff
    account consented to (staff act in the admin, behind its MFA, never through an app) and
    for a client-credentials client without an integration account."""
    application = token.application
    scopes = frozenset(token.scope.split())
    if token.user is not None:
        user = token.user
        if user.is_staff or user.is_superuser:
            raise NotAllowed("token: a staff account cannot act through the API")
        return ApiPrincipal(application=application, user=user, scopes=scopes, kind="customer")
    integration = application.user
    if integration is None:
        raise NotAllowed("client: this application has no integration account")
    return ApiPrincipal(
        application=application, user=integration, scopes=scopes, kind="integration"
    )


def principal_of(request: Any) -> ApiPrincipal:
    """The authenticated request's principal (read once per request)."""
    cached = getattr(request, "_api_principal", None)
    if cached is None:
        if request.auth is None:
            raise NotAllowed("token: authenticate first")
        cached = principal_from_token(request.auth)
        request._api_principal = cached
    return cached


def actor_of(request: Any) -> Actor:
    """The actor services are called with for this request."""
    return principal_of(request).actor
