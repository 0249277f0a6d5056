"""The browser's middleware layers that the bearer-only API passes by (docs/decisions.md, 78).

Each is the named layer for every page, and on a request under ``/api/`` hands the request
straight on (``security.middleware.BrowserOnly``). Listed in ``settings.MIDDLEWARE`` in
place of the originals; every other layer (request id, security headers, NUL refusal,
CSP, Permissions-Policy, language, common, CSRF, no-store, framing, django-axes) runs for
every request.
"""

from __future__ import annotations

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django_otp import middleware as otp

from billing.portal import shell
from security import middleware as security
from security.middleware import BrowserOnly


class SessionMiddleware(BrowserOnly, sessions.SessionMiddleware):
    """The session cookie, read and written for the browser's pages only."""


class AuthenticationMiddleware(BrowserOnly, auth.AuthenticationMiddleware):
    """The session's user (``request.user``); an API request's comes from its token."""


class OTPMiddleware(BrowserOnly, otp.OTPMiddleware):
    """The session user's verified second factor (an API token carries its own, decision 74)."""


class SessionPolicyMiddleware(BrowserOnly, security.SessionPolicyMiddleware):
    """Session lifetime, the session list and the second factor owed."""


class CustomerLanguageMiddleware(BrowserOnly, shell.CustomerLanguageMiddleware):
    """A signed-in customer's pages in the language of their profile."""


class MessageMiddleware(BrowserOnly, messages.MessageMiddleware):
    """Flash messages (kept in the session)."""
