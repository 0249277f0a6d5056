"""Every URL pattern of the project, walked from the resolver, made into a real URL.

The attack tests (URL enumeration, CSRF, injection) take their URLs from here, so a
pattern someone adds tomorrow is attacked tomorrow without anyone listing it. A
pattern's arguments come from :class:`Victim`, the seeded objects of customer Bob (an
invoice, a payment, a refund, a saved card, a session, a delivery link...): Alice, the
attacker, must reach none of them. An admin page's ``object_id`` is a row of that
admin's model (Bob's where the model is Bob's).

Who may open what without being signed in is :data:`PUBLIC`; which pages without
arguments a signed-in customer opens for herself is :data:`CUSTOMER_OWN`. Both lists
are short and documented (docs/security-testing.md); a pattern on neither is a staff
page, refused to customers, and every pattern under ``admin:`` is refused to staff
without a verified second factor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.regex_helper import normalize

# Patterns anyone may open without signing in, with why (by URL name, or the route of
# an unnamed pattern). Everything else refuses an anonymous visitor.
PUBLIC: dict[str, str] = {
    "home": "the front door: sends a visitor to sign in",
    "set_language": "the language switch on the sign-in page (POST, CSRF-protected)",
    "security:login": "signing in",
    "security:logout": "signing out (POST; harmless when signed out)",
    "security:password_reset": "asking for a reset link (answers the same for any address)",
    "security:password_reset_done": "the 'link sent' page",
    "security:password_reset_confirm": "a reset link (refuses a token it did not issue)",
    "admin:login": "the staff sign-in",
    "admin:logout": "the staff sign-out",
    "admin:jsi18n": "the admin's JavaScript translations (no data)",
    "otp_webauthn:credential-authentication-begin": "a passkey sign-in's challenge",
    "otp_webauthn:credential-authentication-complete": "a passkey sign-in's answer",
    "otp_webauthn:js-i18n-catalog": "the passkey script's translations (no data)",
    "documents:verify": "anyone holding one of our PDFs may check its signature",
    "oauth2_provider:token": "OAuth clients get tokens with their own credentials (no session)",
    "oauth2_provider:revoke-token": "OAuth clients revoke their own tokens (client credentials)",
    "oauth2_provider:oidc-connect-discovery-info": "OpenID Connect discovery (public metadata)",
    "oauth2_provider:jwks-info": "the public keys that verify ID tokens",
    "api:schema": "the API's OpenAPI schema (describes endpoints, holds no data)",
    "api:docs": "the API's reference page, from the same schema",
}

# Pages without arguments a signed-in customer opens for herself (her own invoices,
# cards, account, second factors). A pattern with arguments is never on this list:
# built from Bob's objects, every one of them must refuse Alice.
CUSTOMER_OWN: dict[str, str] = {
    "portal:invoices": "her invoices",
    "portal:account": "her company's details and language",
    "portal_pay:cards": "her saved cards",
    "portal_pay:security": "her sign-in and second-factor settings",
    "payments:add_card": "saving a card (the vault's encrypted form)",
    "security:account": "her account page",
    "security:verify": "her second factor at sign-in",
    "security:step_up": "her second factor again before a sensitive action",
    "security:enroll_totp": "adding an authenticator app",
    "security:remove_device": "removing one of her second factors",
    "security:new_backup_codes": "new backup codes",
    "security:end_other_sessions": "signing out her other sessions",
    "security:password_change": "changing her password",
    "otp_webauthn:credential-registration-begin": "adding a passkey",
    "otp_webauthn:credential-registration-complete": "adding a passkey",
    "privacy:privacy": "her privacy page: the policy she accepted, her export, her erasure",
    "privacy:accept": "accepting the current privacy policy (POST)",
    "privacy:export": "asking for her own data export (POST, second factor just now)",
    "privacy:erase": "asking for her own erasure (POST, second factor just now)",
    "oauth2_provider:authorize": "consenting to an app that asks to act for her (docs/api.md)",
}

# Views that take a POST without Django's CSRF token, with why: none reads a session
# cookie, so a cross-site form cannot act with a visitor's session through them.
CSRF_EXEMPT: dict[str, str] = {
    "oauth2_provider:token": "the client authenticates with its own credentials, not a cookie",
    "oauth2_provider:revoke-token": "the client authenticates with its own credentials",
    "oauth2_provider:user-info": "a bearer token only (OpenID Connect userinfo)",
    "api:me": "the API takes bearer tokens only, never a session (docs/api.md)",
    "api:schema": "the public schema (no action)",
    "api:not-found": "answers 404 to everything (no action)",
    "webhooks_api:events": "the API takes bearer tokens only (GET only)",
    "webhooks_api:event": "the API takes bearer tokens only (GET only)",
    "not-found": "any unknown /api/ path: a 404 in the API's error shape for every method",
    # billing.api and payments.api: bearer tokens only (security.api), never a session.
    **{
        name: "the API takes bearer tokens only, never a session (docs/api.md)"
        for name in (
            "api-customer-list",
            "api-customer-detail",
            "api-invoice-list",
            "api-invoice-detail",
            "api-invoice-lines",
            "api-invoice-finalize",
            "api-invoice-void",
            "api-invoice-credit-notes",
            "api-invoice-pdf",
            "api-invoice-verify",
            "api-payment-list",
            "api-payment-detail",
            "api-payment-refunds",
            "api-payment-method-list",
            "api-payment-method-detail",
            "api-card-entry-key",
        )
    },
}


@dataclass(frozen=True)
class Entry:
    """One URL pattern: its full route, its name (or route when unnamed), its view."""

    route: str
    name: str
    pattern: URLPattern
    prefixes: tuple[URLResolver, ...]
    model_admin: Any = None

    @property
    def is_admin(self) -> bool:
        return self.name.startswith("admin:") or self.route.startswith("admin/")

    @property
    def arguments(self) -> tuple[str, ...]:
        names: list[str] = []
        for part in (*(p.pattern for p in self.prefixes), self.pattern.pattern):
            if isinstance(part, RoutePattern):
                names += list(part.converters)
            elif isinstance(part, RegexPattern):
                names += list(part.regex.groupindex)
        return tuple(names)

    def __str__(self) -> str:
        return f"{self.name} (/{self.route})"


def _admin_for(route: str) -> Any:
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        if route.startswith(f"admin/{meta.app_label}/{meta.model_name}/"):
            return model_admin
    return None


def _walk(
    patterns: list[URLPattern | URLResolver], prefixes: tuple[URLResolver, ...], namespace: str
) -> Iterator[Entry]:
    for item in patterns:
        if isinstance(item, URLResolver):
            inner = f"{namespace}{item.namespace}:" if item.namespace else namespace
            yield from _walk(item.url_patterns, (*prefixes, item), inner)
            continue
        route = "".join(str(p.pattern) for p in prefixes) + str(item.pattern)
        name = f"{namespace}{item.name}" if item.name else f"{namespace}<{route}>"
        yield Entry(route, name, item, prefixes, _admin_for(route))


def every_pattern() -> list[Entry]:
    """Every URL pattern of the project, in the resolver's order."""
    return list(_walk(get_resolver().url_patterns, (), ""))


@dataclass
class Victim:
    """Customer Bob's seeded objects, by the URL argument that names them."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def argument(self, entry: Entry, name: str, converter: Any = None) -> str:
        """The value of the entry's argument ``name``: the one given for this page, a row
        of the page's admin model, or the one given for every page. An argument nobody
        named (a page added since) still gets a value its converter takes, Bob's open
        invoice's id or a made-up word, so the page is attacked all the same."""
        by_name = self.values.get(entry.name, {})
        if name in by_name:
            return by_name[name]
        if name in ("object_id", "pk") and entry.model_admin is not None:
            return self._a_row_of(entry.model_admin.model)
        if name in self.values.get("*", {}):
            return self.values["*"][name]
        if isinstance(converter, IntConverter):
            return self.values["*"]["invoice_id"]
        if isinstance(converter, UUIDConverter):
            return "00000000-0000-4000-8000-000000000027"
        return "bob-unnamed-argument"

    def names_every_argument_of(self, entry: Entry) -> bool:
        """True when each of the entry's arguments was given for it (not made up)."""
        given = {**self.values.get("*", {}), **self.values.get(entry.name, {})}
        return all(name in given for name in entry.arguments)

    def _a_row_of(self, model: Any) -> str:
        wanted = self.values.get("model", {}).get(model._meta.label_lower)
        if wanted is not None:
            return wanted
        row = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        return str(row) if row is not None else "1"


def url_of(entry: Entry, victim: Victim) -> str:
    """The entry's URL with its arguments taken from the victim's objects; it resolves back
    to the same view (a URL that missed its pattern would be refused for the wrong reason)."""
    parts: list[str] = []
    for part in (*(p.pattern for p in entry.prefixes), entry.pattern.pattern):
        if isinstance(part, RoutePattern):
            text = str(part)
            for name, converter in part.converters.items():
                value = victim.argument(entry, name, converter)
                text = re.sub(rf"<(\w+:)?{name}>", value, text)
            parts.append(text)
        else:
            template, params = normalize(part.regex.pattern)[0]
            parts.append(template % {p: victim.argument(entry, p) for p in params})
    url = "/" + "".join(parts)
    match = resolve(url)
    assert match.func == entry.pattern.callback, f"{url} does not resolve to {entry}"
    return url


# Where a refusal sends a visitor: to sign in, or to prove a second factor.
REFUSAL_PAGES = {
    "security:login",
    "admin:login",
    "security:verify",
    "security:enroll_totp",
    "security:step_up",
}
REFUSED_STATUS = {400, 401, 403, 404, 405, 410}


def _page_name(location: str) -> str:
    path = location.split("?", 1)[0]
    try:
        match = resolve(path)
    except Exception:
        return f"<unresolved {path}>"
    return match.view_name


# Signing out ends the attacker's own session: the walk asks for those pages with GET only.
SIGN_OUT = {"security:logout", "admin:logout"}


@dataclass(frozen=True)
class Outcome:
    """What a request got: refused, or the page (view name) it reached and its status."""

    refused: bool
    page: str = ""
    status: int = 0

    def __str__(self) -> str:
        return "refused" if self.refused else f"reached {self.page} ({self.status})"


REFUSED = Outcome(refused=True)


def outcome(client: Client, method: str, url: str) -> Outcome:
    """Refused (an error status, or sent to sign in or to a second factor), or the page it
    ended on, following at most three other redirects on this site."""
    response = client.get(url) if method == "GET" else client.post(url, {})
    page = _page_name(url)
    for _hop in range(4):
        if response.status_code in REFUSED_STATUS:
            return REFUSED
        if response.status_code not in (301, 302, 303, 307, 308):
            return Outcome(False, page, response.status_code)
        location = response["Location"]
        page = _page_name(location)
        if page in REFUSAL_PAGES:
            return REFUSED
        if not location.startswith("/"):
            return Outcome(False, location, response.status_code)
        response = client.get(location)
    return Outcome(False, page, response.status_code)
