"""Background jobs of the audit log (django-q2): thin wrappers around services."""

from __future__ import annotations

from audit import SYSTEM
from audit.services import create_checkpoint


def create_scheduled_checkpoint() -> int | None:
    """The scheduled checkpoint; returns the signed seq, or None when nothing new happened."""
    checkpoint = create_checkpoint(by=SYSTEM, only_if_new_events=True)
    return checkpoint.seq if checkpoint else None


def verify_chain_job(verification_id: int) -> str:
    """The chain verification asked for from the admin; returns its outcome."""
    from audit.verification import run_chain_verification

    return run_chain_verification(verification_id).status
