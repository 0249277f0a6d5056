"""Errors of the security app; each names the field or rule it concerns."""

from __future__ import annotations


class SecurityError(Exception):
    """Base of every error the security app raises."""


class InvalidCode(SecurityError):
    """A one-time code was malformed, unknown, already used or throttled."""


class StepUpRequired(SecurityError):
    """The action needs a second factor verified within the last few minutes."""


class NotAllowed(SecurityError):
    """The actor may not do this (missing role or permission)."""


class UnknownRole(SecurityError):
    """A role name that is not in the roles matrix."""


class OidcKeyError(SecurityError):
    """The ID-token signing key cannot be rotated here (it is not kept in a file)."""
