"""The queries behind each section of the quarterly security review, one plain function per
figure, taking a period ``[start, end)`` (aware UTC datetimes) or a moment ``now``.

They are shared with the staff dashboards wherever both show the same figure (one query,
one definition): ``staff_without_second_factor``, ``dormant_staff_accounts``,
``lockouts_since``, ``key_inventory``, ``latest_chain_verification``. Each returns plain
JSON values (strings, integers, lists, dicts), so a generated review stores exactly what
it showed. The query behind each is in its docstring (docs/audit.md, "Quarterly review").
Nothing here loads the audit log into memory: every figure over events is counted by the
database.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from audit.models import AuditCheckpoint, AuditEvent

LOGIN = "auth.login"
LOGIN_FAILED = "auth.login_failed"
LOCKOUT = "security.lockout"
ADDRESS_BLOCKED = "security.address_blocked"
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
CHAIN_VERIFIED = "audit.chain_verified"
SUPERUSER_USED = "security.superuser_used"
MAX_LISTED = 200


def _iso(value: datetime.datetime | datetime.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _events(
    actions: Iterable[str], start: datetime.datetime, end: datetime.datetime
) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(
        action__in=list(actions), created_at__gte=start, created_at__lt=end
    )


# --- access review (PCI DSS 7.2.4, 8.2.6) ----------------------------------------------


def _staff_q() -> Q:
    from security.roles import STAFF_ROLES

    return Q(is_staff=True) | Q(is_superuser=True) | Q(groups__name__in=STAFF_ROLES)


def staff_accounts() -> QuerySet[Any]:
    """Every staff account (flag or staff role), with ``has_factor`` (a confirmed factor
    other than backup codes) and ``factors_at`` (its first factor's enrollment).

    Query: ``SELECT user.*, EXISTS(totp confirmed) OR EXISTS(passkey confirmed),
    (SELECT MIN(created_at) FROM otp_totp_totpdevice …) FROM security_user WHERE pk IN
    (staff) ORDER BY username``."""
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from django_otp_webauthn.models import WebAuthnCredential

    from security.selectors import enrolled_factor

    user_model = get_user_model()
    staff_ids = user_model.objects.filter(_staff_q()).values("pk")
    first_totp = (
        TOTPDevice.objects.filter(user_id=OuterRef("pk"), confirmed=True)
        .order_by("created_at")
        .values("created_at")[:1]
    )
    first_passkey = (
        WebAuthnCredential.objects.filter(user_id=OuterRef("pk"), confirmed=True)
        .order_by("created_at")
        .values("created_at")[:1]
    )
    return (
        user_model.objects.filter(pk__in=staff_ids)
        .annotate(
            has_factor=enrolled_factor(OuterRef("pk")),
            first_totp=Subquery(first_totp),
            first_passkey=Subquery(first_passkey),
        )
        .prefetch_related("groups")
        .order_by("username")
    )


def _dormant(user: Any, now: datetime.datetime) -> bool:
    cutoff = now - datetime.timedelta(days=settings.SECURITY_DORMANT_STAFF_DAYS)
    seen = user.last_login or user.date_joined
    return bool(seen < cutoff)


def staff_without_second_factor() -> int:
    """Active staff accounts without a confirmed factor (backup codes do not count).

    Query: ``SELECT COUNT(*) FROM security_user WHERE is_active AND pk IN (staff) AND NOT
    (EXISTS totp OR EXISTS passkey)``."""
    from security.selectors import enrolled_factor

    user_model = get_user_model()
    staff_ids = user_model.objects.filter(_staff_q()).values("pk")
    return (
        user_model.objects.filter(pk__in=staff_ids, is_active=True)
        .exclude(enrolled_factor(OuterRef("pk")))
        .count()
    )


def dormant_staff_accounts(now: datetime.datetime | None = None) -> dict[str, int]:
    """Staff accounts unused for SECURITY_DORMANT_STAFF_DAYS: still enabled, and disabled.

    Query: ``SELECT is_active, COUNT(*) FROM security_user WHERE pk IN (staff) AND
    COALESCE(last_login, date_joined) < now - 90 days GROUP BY is_active``."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(days=settings.SECURITY_DORMANT_STAFF_DAYS)
    user_model = get_user_model()
    staff_ids = user_model.objects.filter(_staff_q()).values("pk")
    rows = (
        user_model.objects.filter(pk__in=staff_ids)
        .filter(Q(last_login__lt=cutoff) | Q(last_login__isnull=True, date_joined__lt=cutoff))
        .values("is_active")
        .annotate(n=Count("pk"))
    )
    counts = {row["is_active"]: row["n"] for row in rows}
    return {"enabled": counts.get(True, 0), "disabled": counts.get(False, 0)}


def access_review(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """Every staff account with its roles, last login, factors, privilege and dormancy at
    the period's end; and the role changes of the period (audit events).

    Queries: ``staff_accounts`` (one, plus one for the groups); ``SELECT … FROM
    audit_auditevent WHERE action IN (role changes) AND created_at >= start AND created_at
    < end ORDER BY seq`` (at most 200 listed, all counted); the same for the break-glass
    superuser sign-ins (``security.superuser_used``)."""
    from security.roles import FOUR_EYES_ROLES

    accounts = []
    for user in staff_accounts():
        roles = sorted(group.name for group in user.groups.all())
        accounts.append(
            {
                "username": user.get_username(),
                "roles": roles,
                "active": user.is_active,
                "last_login": _iso(user.last_login),
                "second_factor": bool(user.has_factor),
                "privileged": bool(user.is_superuser or set(roles) & set(FOUR_EYES_ROLES)),
                "superuser": user.is_superuser,
                "dormant": _dormant(user, end),
            }
        )
    changes = _events(ROLE_CHANGES, start, end).order_by("seq")
    breakglass = _events([SUPERUSER_USED], start, end).order_by("seq")
    return {
        "accounts": accounts,
        "staff": len(accounts),
        "active": sum(1 for a in accounts if a["active"]),
        "without_second_factor": sum(1 for a in accounts if a["active"] and not a["second_factor"]),
        "privileged": sum(1 for a in accounts if a["privileged"] and a["active"]),
        "dormant_enabled": sum(1 for a in accounts if a["dormant"] and a["active"]),
        "dormant_disabled": sum(1 for a in accounts if a["dormant"] and not a["active"]),
        "role_changes": changes.count(),
        "superuser_signins": [
            {"seq": e.seq, "at": _iso(e.created_at), "actor": e.actor_label, "ip": e.ip}
            for e in breakglass[:MAX_LISTED]
        ],
        "role_change_list": [
            {
                "seq": event.seq,
                "at": _iso(event.created_at),
                "action": event.action,
                "actor": event.actor_label,
                "object_id": event.object_id,
            }
            for event in changes[:MAX_LISTED]
        ],
    }


# --- authentication ----------------------------------------------------------------------


def weekly_counts(
    actions: Iterable[str], start: datetime.datetime, end: datetime.datetime
) -> dict[str, dict[str, int]]:
    """``{week start (date): {action: count}}`` of audit events in the period.

    Query: ``SELECT date_trunc('week', created_at), action, COUNT(*) FROM audit_auditevent
    WHERE action IN (…) AND created_at >= start AND created_at < end GROUP BY 1, 2``."""
    rows = (
        _events(actions, start, end)
        .annotate(week=TruncWeek("created_at"))
        .values("week", "action")
        .annotate(n=Count("seq"))
        .order_by()
    )
    weeks: dict[str, dict[str, int]] = {}
    for row in rows:
        week = row["week"].date().isoformat()
        weeks.setdefault(week, {})[row["action"]] = row["n"]
    return weeks


def _week_starts(start: datetime.datetime, end: datetime.datetime) -> list[datetime.date]:
    day = start.date() - datetime.timedelta(days=start.weekday())
    weeks = []
    while datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC) < end:
        weeks.append(day)
        day += datetime.timedelta(days=7)
    return weeks


def lockouts_since(since: datetime.datetime) -> int:
    """Account lockouts and blocked addresses since ``since`` (the dashboard's "24 h").

    Query: ``SELECT COUNT(*) FROM audit_auditevent WHERE action IN ('security.lockout',
    'security.address_blocked') AND created_at >= since``."""
    return AuditEvent.objects.filter(
        action__in=[LOCKOUT, ADDRESS_BLOCKED], created_at__gte=since
    ).count()


def authentication(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """Logins, failures and lockouts per week; the top sources of failures; MFA coverage of
    the staff at the end of each week.

    Queries: ``weekly_counts`` over the three actions; ``SELECT ip, COUNT(*) FROM
    audit_auditevent WHERE action = 'auth.login_failed' AND created_at in period GROUP BY
    ip ORDER BY 2 DESC LIMIT 10``; ``staff_accounts`` for the coverage (who had a factor,
    since when)."""
    counts = weekly_counts([LOGIN, LOGIN_FAILED, LOCKOUT], start, end)
    weeks = []
    for day in _week_starts(start, end):
        row = counts.get(day.isoformat(), {})
        weeks.append(
            {
                "week": day.isoformat(),
                "logins": row.get(LOGIN, 0),
                "failures": row.get(LOGIN_FAILED, 0),
                "lockouts": row.get(LOCKOUT, 0),
            }
        )
    sources = (
        _events([LOGIN_FAILED], start, end)
        .values("ip")
        .annotate(n=Count("seq"))
        .order_by("-n", "ip")[:10]
    )
    staff = list(staff_accounts().values("date_joined", "first_totp", "first_passkey"))
    coverage = []
    for day in _week_starts(start, end):
        week_end = min(
            datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
            + datetime.timedelta(days=7),
            end,
        )
        present = [s for s in staff if s["date_joined"] < week_end]
        covered = [
            s
            for s in present
            if any(t is not None and t < week_end for t in (s["first_totp"], s["first_passkey"]))
        ]
        percent = round(100 * len(covered) / len(present)) if present else 100
        coverage.append({"week": day.isoformat(), "percent": percent})
    return {
        "weeks": weeks,
        "logins": sum(w["logins"] for w in weeks),
        "failures": sum(w["failures"] for w in weeks),
        "lockouts": sum(w["lockouts"] for w in weeks),
        "top_failure_sources": [
            {"ip": row["ip"] or "unknown", "failures": row["n"]} for row in sources
        ],
        "mfa_coverage": coverage,
    }


# --- keys (PCI DSS 3.6, 3.7) -----------------------------------------------------------


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
    KEK, the audit checkpoint key and the invoice signing certificate.

    Queries: ``get_key_status`` (DEKs with their record counts, entry keys);
    ``kek_in_use_since``; ``SELECT MIN(created_at) FROM audit_auditcheckpoint WHERE key_id
    = current``. The signing certificate is read from its file."""
    from audit.keys import current_public_key
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
    try:
        public = current_public_key()
    except Exception:
        public = None
    first_use = (
        AuditCheckpoint.objects.filter(key_id=public.key_id).aggregate(first=Min("created_at"))[
            "first"
        ]
        if public is not None
        else None
    )
    rows.append(
        _key_row(
            "audit checkpoint key",
            public.key_id[:16] if public else "",
            first_use,
            settings.GOVERNANCE_AUDIT_KEY_CRYPTOPERIOD_DAYS,
            now,
        )
    )
    rows.append(_signing_certificate_row(now))
    return rows


def _signing_certificate_row(now: datetime.datetime) -> dict[str, Any]:
    from billing.documents.keys import key_path, load_identity

    if not key_path().exists():
        return _key_row("invoice signing certificate", "", None, 0, now)
    try:
        identity = load_identity()
    except Exception:
        return _key_row("invoice signing certificate", "", None, 0, now)
    since = identity.certificate.not_valid_before_utc
    days = (identity.not_valid_after - since).total_seconds() / 86400
    return _key_row(
        "invoice signing certificate", identity.fingerprint[:16], since, round(days, 1), now
    )


def keys(
    start: datetime.datetime, end: datetime.datetime, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """The key inventory now, the rotations of the period and the re-encryption backlog.

    Queries: ``key_inventory``; ``SELECT action, COUNT(*) FROM audit_auditevent WHERE action
    IN (rotations) AND created_at in period GROUP BY action``."""
    inventory = key_inventory(now)
    rotations = {
        row["action"]: row["n"]
        for row in _events(KEY_ROTATIONS, start, end).values("action").annotate(n=Count("seq"))
    }
    backlog = sum(row.get("records", 0) for row in inventory)
    return {
        "inventory": inventory,
        "rotations": {action: rotations.get(action, 0) for action in KEY_ROTATIONS},
        "reencryption_backlog": backlog,
        "overdue": sum(1 for row in inventory if row["status"] == "overdue"),
        "due_soon": sum(1 for row in inventory if row["status"] == "due_soon"),
    }


# --- audit integrity (PCI DSS 10.3, 10.5) ----------------------------------------------


def latest_chain_verification(before: datetime.datetime | None = None) -> dict[str, Any] | None:
    """The last recorded chain verification (``audit.chain_verified``), for the dashboard.

    Query: ``SELECT … FROM audit_auditevent WHERE action = 'audit.chain_verified' [AND
    created_at < before] ORDER BY seq DESC LIMIT 1``."""
    events = AuditEvent.objects.filter(action=CHAIN_VERIFIED)
    if before is not None:
        events = events.filter(created_at__lt=before)
    event = events.order_by("-seq").first()
    if event is None:
        return None
    return {"seq": event.seq, "at": _iso(event.created_at), **event.details}


def audit_integrity(
    start: datetime.datetime, end: datetime.datetime, verification: dict[str, Any]
) -> dict[str, Any]:
    """The chain verification made for this review (``verification``), the verifications
    recorded in the period, the period's checkpoints and the archives exported in it.

    Queries: ``SELECT details FROM audit_auditevent WHERE action = 'audit.chain_verified'
    AND created_at in period``; ``SELECT COUNT(*), MIN(seq), MAX(seq) FROM
    audit_auditcheckpoint WHERE created_at in period``; ``SELECT … FROM audit_auditevent
    WHERE action = 'audit.archived' AND created_at in period``."""
    runs = list(_events([CHAIN_VERIFIED], start, end).values_list("details", flat=True))
    checkpoints = AuditCheckpoint.objects.filter(created_at__gte=start, created_at__lt=end)
    summary = checkpoints.aggregate(n=Count("pk"), first=Min("seq"))
    events = AuditEvent.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        first=Min("seq"), n=Count("seq")
    )
    archives = [
        {
            "directory": e.details.get("directory"),
            "first_seq": e.details.get("first_seq"),
            "last_seq": e.details.get("last_seq"),
            "manifest_sha256": e.details.get("manifest_sha256"),
        }
        for e in _events(["audit.archived"], start, end).order_by("seq")[:MAX_LISTED]
    ]
    return {
        "verification": verification,
        "events_in_period": events["n"],
        "recorded_runs": len(runs),
        "recorded_failures": sum(1 for run in runs if not run.get("ok")),
        "checkpoints": summary["n"],
        "archives": archives,
        "ok": bool(verification.get("ok")) and all(run.get("ok") for run in runs),
    }


# --- backups (issue 25 wires its model here) ---------------------------------------------


def backup_model() -> Any:
    """The backup-run model when the backups package is installed, else None."""
    # By name at run time: the model comes with the backups package (issue 25).
    models = {model.__name__: model for model in apps.get_app_config("audit").get_models()}
    return models.get("BackupRun")


def backup_runs(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """Backups and restore tests of the period: successes, failures, the last restore test.

    Query: ``SELECT kind, outcome, COUNT(*) FROM audit_backuprun WHERE started_at in period
    GROUP BY 1, 2`` and the last restore test; ``configured`` False when this installation
    has no backup runs table."""
    model = backup_model()
    if model is None:
        return {"configured": False}
    runs = model.objects.filter(started_at__gte=start, started_at__lt=end)
    rows = runs.values("kind", "outcome").annotate(n=Count("pk"))
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(str(row["kind"]), {})[str(row["outcome"])] = row["n"]
    last = (
        model.objects.filter(kind="restore_test", started_at__lt=end)
        .order_by("-started_at")
        .first()
    )
    return {
        "configured": True,
        "counts": counts,
        "last_restore_test": (
            {"at": _iso(last.started_at), "outcome": str(last.outcome)} if last else None
        ),
    }


def failed_backup_runs(since: datetime.datetime) -> list[int]:
    """Ids of backups or restore tests that failed since ``since`` (the detector's)."""
    model = backup_model()
    if model is None:
        return []
    return list(
        model.objects.filter(started_at__gte=since, outcome="failed").values_list("pk", flat=True)
    )


# --- payments and fraud -----------------------------------------------------------------


def payments_and_fraud(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """Card and bank payments of the period by outcome and currency, declines, risk reviews
    and blocks, refunds, per week for the charts.

    Queries: ``SELECT date_trunc('week', created_at), status, risk_decision, failure_code =
    'risk_blocked', currency, COUNT(*), SUM(amount) FROM payments_payment WHERE created_at
    in period GROUP BY 1..5``; ``SELECT status, currency, COUNT(*), SUM(amount) FROM
    payments_refund WHERE created_at in period GROUP BY 1, 2``. Chargebacks: no acquirer
    feed reports them yet (shown as not tracked)."""
    from payments.models import Payment, Refund

    rows = (
        Payment.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(week=TruncWeek("created_at"))
        .values("week", "status", "risk_decision", "failure_code", "currency", "method")
        .annotate(n=Count("pk"), total=Sum("amount"))
        .order_by()
    )
    weeks: dict[str, dict[str, int]] = {
        day.isoformat(): {"succeeded": 0, "declined": 0, "blocked": 0, "review": 0}
        for day in _week_starts(start, end)
    }
    volumes: dict[str, int] = {}
    totals = {
        "payments": 0,
        "succeeded": 0,
        "declined": 0,
        "blocked": 0,
        "review": 0,
        "card": 0,
        "bank_transfer": 0,
    }
    captured = {
        Payment.Status.SUCCEEDED,
        Payment.Status.PARTIALLY_REFUNDED,
        Payment.Status.REFUNDED,
    }
    for row in rows:
        week = weeks.setdefault(
            row["week"].date().isoformat(),
            {"succeeded": 0, "declined": 0, "blocked": 0, "review": 0},
        )
        n = row["n"]
        totals["payments"] += n
        totals[row["method"]] = totals.get(row["method"], 0) + n
        if row["status"] in captured:
            totals["succeeded"] += n
            week["succeeded"] += n
            volumes[row["currency"]] = volumes.get(row["currency"], 0) + int(row["total"] or 0)
        elif row["status"] == Payment.Status.FAILED and row["failure_code"] == "risk_blocked":
            totals["blocked"] += n
            week["blocked"] += n
        elif row["status"] == Payment.Status.FAILED:
            totals["declined"] += n
            week["declined"] += n
        if row["risk_decision"] == "review":
            totals["review"] += n
            week["review"] += n
    refunds = (
        Refund.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("status", "currency")
        .annotate(n=Count("pk"), total=Sum("amount"))
        .order_by("status", "currency")
    )
    return {
        **totals,
        "volumes": dict(sorted(volumes.items())),
        "weeks": [{"week": week, **counts} for week, counts in sorted(weeks.items())],
        "refunds": [
            {
                "status": r["status"],
                "currency": r["currency"],
                "count": r["n"],
                "amount": int(r["total"] or 0),
            }
            for r in refunds
        ],
        "refund_count": sum(r["n"] for r in refunds),
        "chargebacks": None,
    }


# --- incidents ----------------------------------------------------------------------------


def incidents(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """Incidents detected in the period or still open at its start, with their time to
    contain and to close (``audit.incidents.selectors.incidents_in_period``)."""
    from audit.incidents.selectors import incidents_in_period

    listed = []
    for incident in incidents_in_period(start, end):
        contain, close = incident.time_to_contain, incident.time_to_close
        listed.append(
            {
                "id": incident.pk,
                "title": incident.title,
                "kind": incident.kind,
                "severity": incident.severity,
                "status": incident.status,
                "detected_at": _iso(incident.detected_at),
                "hours_to_contain": round(contain.total_seconds() / 3600, 1) if contain else None,
                "hours_to_close": round(close.total_seconds() / 3600, 1) if close else None,
            }
        )
    return {
        "incidents": listed,
        "count": len(listed),
        "open": sum(1 for i in listed if i["status"] != "closed"),
    }


# --- findings -----------------------------------------------------------------------------


def findings_for(end: datetime.datetime, review_id: int | None = None) -> list[dict[str, Any]]:
    """Findings open at the period's end (carried over from earlier reviews until closed),
    and those raised by this review.

    Query: ``SELECT … FROM audit_reviewfinding WHERE (raised_at < end AND (closed_at IS NULL
    OR closed_at >= end)) OR review_id = this ORDER BY due_date``."""
    from audit.reviews.models import ReviewFinding

    found = ReviewFinding.objects.filter(
        Q(raised_at__lt=end) & (Q(closed_at__isnull=True) | Q(closed_at__gte=end))
        | Q(review_id=review_id)
    ).select_related("owner", "review")
    return [
        {
            "id": f.pk,
            "title": f.title,
            "owner": f.owner.get_username() if f.owner else "",
            "due_date": _iso(f.due_date),
            "status": f.status,
            "raised_in": str(f.review) if f.review_id else "",
            "carried_over": f.review_id is not None and f.review_id != review_id,
        }
        for f in found.order_by("due_date", "pk")
    ]
