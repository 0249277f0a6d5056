"""Errors of the audit log."""


class AuditError(Exception):
    """Base of every audit-log error."""


class InvalidAuditEvent(AuditError, ValueError):
    """An event was refused before it was written: bad action, actor or details."""


class AuditKeyError(AuditError):
    """The checkpoint signing key is missing, unsafe or unreadable."""


class AuditArchiveError(AuditError):
    """An archive was refused or failed its own verification; nothing was recorded."""


class BackupError(AuditError):
    """A backup, restore or restore test was refused or failed; the message names the cause."""
