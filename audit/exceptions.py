"""Errors of the audit log."""


class AuditError(Exception):
    """Base of every audit-log error."""


class InvalidAuditEvent(AuditError, ValueError):
    """An event was refused before it was written: bad action, actor or details."""
