"""Background jobs of the security app (django-q2): thin wrappers around services."""

from __future__ import annotations

from audit import SYSTEM
from security.services import disable_dormant_staff, email_security_alert, purge_job_attempts


def disable_dormant_staff_accounts() -> int:
    """The daily job: deactivate staff accounts unused for 90 days; returns how many."""
    return disable_dormant_staff(by=SYSTEM)


def email_security_alert_job(alert_id: int) -> int:
    """Email an open security alert to the security officers; returns how many."""
    return email_security_alert(alert_id)


def purge_job_attempts_job() -> int:
    """Daily: delete job attempts past their retention; returns how many."""
    return purge_job_attempts(by=SYSTEM)


def delete_expired_idempotency_keys_job() -> int:
    """Daily: delete the API's expired Idempotency-Keys; returns how many."""
    from security.services.idempotency_keys import delete_expired_idempotency_keys

    return delete_expired_idempotency_keys(by=SYSTEM)
