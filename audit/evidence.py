"""The figures the incident detectors watch, the quarterly review reports and the staff
dashboards show: one query, one definition each (the review's sections re-export them from
``audit.reviews.selectors``). Reads only; each docstring names its query.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import (
    ADDRESS_BLOCKED,
    LOCKOUT,
    checkpoint_key_in_use_since,
    lockouts_since,
)

__all__ = ["ADDRESS_BLOCKED", "LOCKOUT", "lockouts_since"]

LOGIN = "auth.login"
LOGIN_FAILED = "auth.login_failed"
CARD_REVEALED = "vault.card_revealed"
FRAUD_DECLINES = ("payment.blocked", "payment.risk_declined")
ROLE_CHANGES = (
    "security.roles_changed",
    "security.role_grant_requested",
    "security.role_grant_rejected",
)
KEY_ROTATIONS = (
    "vault.dek_rotated",
    "vault.kek_rotated",
    "vault.entry_key_rotated",
    "vault.dek_destroyed",
)
SUPERUSER_USED = "security.superuser_used"


def _iso(value: datetime.datetime | datetime.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def staff_without_second_factor() -> int:
    """How many active staff accounts have no confirmed factor
    (``security.selectors.staff_without_second_factor``, counted)."""
    from security.selectors import staff_without_second_factor as without

    return int(without().count())


def dormant_staff_accounts(now: datetime.datetime | None = None) -> dict[str, int]:
    """Staff accounts unused for SECURITY_DORMANT_STAFF_DAYS: still enabled, and disabled
    (``security.selectors.dormant_staff_accounts``, counted by ``is_active``)."""
    from security.selectors import dormant_staff_accounts as dormant

    rows = dormant(now=now).values("is_active").annotate(n=Count("pk")).order_by()
    counts = {row["is_active"]: row["n"] for row in rows}
    return {"enabled": counts.get(True, 0), "disabled": counts.get(False, 0)}


def _key_row(
    name: str,
    key_id: str,
    since: datetime.datetime | None,
    period_days: float,
    now: datetime.datetime,
) -> dict[str, Any]:
    if since is None:
        return {
            "name": name,
            "key_id": key_id,
            "since": None,
            "age_days": None,
            "cryptoperiod_days": period_days,
            "ends_at": None,
            "status": "unknown",
        }
    ends = since + datetime.timedelta(days=period_days)
    warning = datetime.timedelta(days=settings.GOVERNANCE_KEY_WARNING_DAYS)
    warn_from = ends - min(warning, (ends - since) / 2)
    status = "overdue" if now >= ends else "due_soon" if now >= warn_from else "ok"
    return {
        "name": name,
        "key_id": key_id,
        "since": _iso(since),
        "age_days": round((now - since).total_seconds() / 86400, 1),
        "cryptoperiod_days": period_days,
        "ends_at": _iso(ends),
        "status": status,
    }


def kek_in_use_since() -> tuple[int | None, datetime.datetime | None]:
    """The keyring's current KEK version and when it took over: its ``vault.kek_rotated``
    event, or (never rotated) the first data key it wrapped.

    Queries: ``SELECT … FROM audit_auditevent WHERE action = 'vault.kek_rotated' ORDER BY
    seq DESC LIMIT 20``; ``SELECT MIN(created_at) FROM payments_datakey``."""
    from payments.vault.models import DataKey
    from security.keyring import get_keyring

    try:
        version: int | None = get_keyring().current_version()
    except Exception:  # the section shows the keyring's fault instead
        return None, None
    for event in AuditEvent.objects.filter(action="vault.kek_rotated").order_by("-seq")[:20]:
        if event.details.get("kek_version") == version:
            return version, event.created_at
    first = DataKey.objects.aggregate(first=Min("created_at"))["first"]
    return version, first


def key_inventory(now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """Every live key with its age against its cryptoperiod: the active and decrypt-only
    DEKs (``payments.vault.selectors.get_key_status``), the card-entry keys, the current
    KEK, the audit checkpoint key, the invoice signing certificate and the OpenID Connect
    ID-token signing key.

    Queries: ``get_key_status`` (DEKs with their record counts, entry keys);
    ``kek_in_use_since``; ``SELECT MIN(created_at) FROM audit_auditcheckpoint WHERE key_id
    = current``. The signing certificate and the ID-token key are read from their files."""
    from payments.vault.selectors import get_key_status

    now = now or timezone.now()
    status = get_key_status(destroyed_limit=0)
    rows = []
    dek_days = settings.VAULT_DEK_ROTATION_HOURS / 24
    if status.active is not None:
        rows.append(
            _key_row(
                f"DEK {status.active.key_id} (active)",
                status.active.key_id,
                status.active.created_at,
                dek_days,
                now,
            )
        )
    for row in status.decrypt_only:
        retired = _key_row(
            f"DEK {row.key_id} (decrypt only)", row.key_id, row.created_at, dek_days, now
        )
        retired["status"] = "retired"
        retired["records"] = row.records
        rows.append(retired)
    entry_days = settings.VAULT_ENTRY_KEY_ROTATION_HOURS / 24
    for entry in status.entry_keys:
        if entry["state"] == "active":
            rows.append(
                _key_row(
                    f"card-entry key {entry['kid']}",
                    entry["kid"],
                    entry["created_at"],
                    entry_days,
                    now,
                )
            )
    version, since = kek_in_use_since()
    rows.append(
        _key_row(
            f"KEK version {version}" if version else "KEK (keyring unavailable)",
            str(version or ""),
            since,
            settings.GOVERNANCE_KEK_CRYPTOPERIOD_DAYS,
            now,
        )
    )
    key_id, first_use = checkpoint_key_in_use_since()
    rows.append(
        _key_row(
            "audit checkpoint key",
            key_id[:16],
            first_use,
            settings.GOVERNANCE_AUDIT_KEY_CRYPTOPERIOD_DAYS,
            now,
        )
    )
    rows.append(_signing_certificate_row(now))
    rows.append(_oidc_key_row(now))
    return rows


def _oidc_key_row(now: datetime.datetime) -> dict[str, Any]:
    from security.selectors import oidc_signing_key_in_use

    kid, since = oidc_signing_key_in_use()
    return _key_row(
        "OpenID Connect ID-token key", kid[:16], since, settings.OIDC_KEY_CRYPTOPERIOD_DAYS, now
    )


def _signing_certificate_row(now: datetime.datetime) -> dict[str, Any]:
    from billing.documents.selectors import signing_certificate_validity

    validity = signing_certificate_validity()
    if validity is None:
        return _key_row("invoice signing certificate", "", None, 0, now)
    fingerprint, since, until = validity
    days = (until - since).total_seconds() / 86400
    return _key_row("invoice signing certificate", fingerprint[:16], since, round(days, 1), now)


def latest_chain_verification(before: datetime.datetime | None = None) -> dict[str, Any] | None:
    """The last finished chain verification (``audit.selectors.last_chain_verification``,
    the one source the dashboards read too), as the review stores it (plain JSON)."""
    from audit.selectors import last_chain_verification

    verification = last_chain_verification(before)
    return verification_summary(verification) if verification is not None else None


def verification_summary(verification: Any) -> dict[str, Any]:
    """A ``ChainVerification`` row as plain JSON values."""
    return {
        "id": verification.pk,
        "source": verification.source,
        "status": verification.status,
        "ok": verification.status == "passed",
        "at": _iso(verification.finished_at),
        "events": verification.events_checked,
        "last_seq": verification.last_seq,
        "checkpoints": verification.checkpoints,
        "problems": verification.problems,
        "first_problem": verification.first_problem or None,
    }


def backups_configured() -> bool:
    """Whether this installation makes backups: a backup has ever run (audit.backups)."""
    from audit.backups.models import BackupRun

    return BackupRun.objects.exists()


def failed_backup_runs(since: datetime.datetime) -> list[str]:
    """Backups and restore tests that failed since ``since`` (the detector's), by name.

    Queries: ``SELECT name FROM audit_backuprun WHERE status = 'failed' AND started_at >=
    since``; ``SELECT backup_name FROM audit_restoretest WHERE passed IS FALSE AND
    started_at >= since``."""
    from audit.backups.models import BackupRun, RestoreTest

    failed = [
        f"backup {name}"
        for name in BackupRun.objects.filter(
            started_at__gte=since, status=BackupRun.Status.FAILED
        ).values_list("name", flat=True)
    ]
    failed += [
        f"restore test of {name or '—'}"
        for name in RestoreTest.objects.filter(started_at__gte=since, passed=False).values_list(
            "backup_name", flat=True
        )
    ]
    return failed
