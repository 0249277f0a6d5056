"""Background jobs of privacy (django-q2): thin wrappers around services."""

from __future__ import annotations

from audit import SYSTEM
from billing.privacy.services import (
    apply_privacy_retention,
    build_data_export,
    fail_data_export,
)


def build_data_export_job(export_id: int) -> str:
    try:
        token = build_data_export(export_id)
    except Exception as exc:  # recorded on the export, then the attempt fails as usual
        fail_data_export(export_id, error=f"{type(exc).__name__}: {str(exc)[:200]}")
        raise
    return "built" if token else "nothing to do"


def apply_privacy_retention_job() -> dict[str, int]:
    return apply_privacy_retention(by=SYSTEM)
