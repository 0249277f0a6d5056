"""The queries behind each section of the quarterly security review, one plain function per
figure, taking a period ``[start, end)`` (aware UTC datetimes) or a moment ``now``.

The figures shared with the detectors and the staff dashboards (one query, one
definition: ``staff_without_second_factor``, ``dormant_staff_accounts``,
``lockouts_since``, ``key_inventory``, ``latest_chain_verification``) come from
``audit.evidence``, which calls the low selectors that define them (``security.selectors``,
``audit.selectors``, ``billing.documents.selectors``), and are re-exported here. Each
returns plain
JSON values (strings, integers, lists, dicts), so a generated review stores exactly what
it showed. The query behind each is in its docstring (docs/audit.md, "Quarterly review").
Nothing here loads the audit log into memory: every figure over events is counted by the
database.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncWeek

from audit.evidence import (  # the figures the detectors and dashboards share
    ADDRESS_BLOCKED,
    CARD_REVEALED,
    FRAUD_DECLINES,
    KEY_ROTATIONS,
    LOCKOUT,
    LOGIN,
    LOGIN_FAILED,
    ROLE_CHANGES,
    SUPERUSER_USED,
    _iso,
    backups_configured,
    dormant_staff_accounts,
    failed_backup_runs,
    kek_in_use_since,
    key_inventory,
    latest_chain_verification,
    lockouts_since,
    staff_without_second_factor,
    verification_summary,
)
from audit.models import AuditCheckpoint, AuditEvent
from audit.selectors import chain_verifications_between

__all__ = [
    "ADDRESS_BLOCKED",
    "CARD_REVEALED",
    "FRAUD_DECLINES",
    "LOCKOUT",
    "LOGIN",
    "LOGIN_FAILED",
    "access_review",
    "audit_integrity",
    "authentication",
    "backup_runs",
    "dormant_staff_accounts",
    "failed_backup_runs",
    "findings_for",
    "incidents",
    "kek_in_use_since",
    "key_inventory",
    "keys",
    "latest_chain_verification",
    "lockouts_since",
    "payments_and_fraud",
    "staff_accounts",
    "staff_without_second_factor",
    "weekly_counts",
]
MAX_LISTED = 200


def _events(
    actions: Iterable[str], start: datetime.datetime, end: datetime.datetime
) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(
        action__in=list(actions), created_at__gte=start, created_at__lt=end
    )


# --- access review (PCI DSS 7.2.4, 8.2.6) ----------------------------------------------


def staff_accounts() -> QuerySet[Any]:
    """Every staff account (flag or staff role), with ``has_factor`` (a confirmed factor
    other than backup codes) and ``factors_at`` (its first factor's enrollment).

    Query: ``SELECT user.*, EXISTS(totp confirmed) OR EXISTS(passkey confirmed),
    (SELECT MIN(created_at) FROM otp_totp_totpdevice …) FROM security_user WHERE pk IN
    (staff) ORDER BY username``."""
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from django_otp_webauthn.models import WebAuthnCredential

    from security.selectors import enrolled_factor, staff_q

    user_model = get_user_model()
    staff_ids = user_model.objects.filter(staff_q()).values("pk")
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


def audit_integrity(
    start: datetime.datetime,
    end: datetime.datetime,
    verification: dict[str, Any],
    copies: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The chain verification made for this review (``verification``), the verifications
    recorded in the period, the period's checkpoints, the archives exported in it, and
    whether the exported copies match the live chain (``copies``, checked for this review
    by ``audit.exports``: a mismatch fails the section; a copy not found is listed).

    Queries: ``audit.selectors.chain_verifications_between`` (the ``ChainVerification``
    rows every verification path writes, finished in the period); ``SELECT COUNT(*),
    MIN(seq), MAX(seq) FROM audit_auditcheckpoint WHERE created_at in period``;
    ``SELECT … FROM audit_auditevent WHERE action = 'audit.archived' AND created_at in
    period``."""
    runs = [verification_summary(v) for v in chain_verifications_between(start, end)]
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
    copies = copies or []
    mismatched = [copy for copy in copies if copy["status"] == "mismatch"]
    return {
        "verification": verification,
        "events_in_period": events["n"],
        "recorded_runs": len(runs),
        "recorded_failures": sum(1 for run in runs if not run.get("ok")),
        "checkpoints": summary["n"],
        "archives": archives,
        "copies": copies,
        "copies_matching": sum(1 for copy in copies if copy["status"] == "match"),
        "copies_mismatched": len(mismatched),
        "copies_missing": sum(1 for copy in copies if copy["status"] == "missing"),
        "ok": bool(verification.get("ok"))
        and all(run.get("ok") for run in runs)
        and not mismatched,
    }


# --- backups (issue 25 wires its model here) ---------------------------------------------


def backup_runs(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """Backups and restore tests of the period: successes and failures by kind, the last
    restore test and its result (``audit.backups``).

    Queries: ``SELECT kind, status, COUNT(*) FROM audit_backuprun WHERE started_at in period
    GROUP BY 1, 2``; ``SELECT passed, COUNT(*) FROM audit_restoretest WHERE started_at in
    period GROUP BY 1``; the last restore test before the period's end. ``configured``
    False when no backup has ever run in this installation."""
    from audit.backups.models import BackupRun, RestoreTest

    if not backups_configured():
        return {"configured": False}
    counts: dict[str, dict[str, int]] = {}
    runs = BackupRun.objects.filter(started_at__gte=start, started_at__lt=end)
    for row in runs.values("kind", "status").annotate(n=Count("pk")).order_by():
        counts.setdefault(str(row["kind"]), {})[str(row["status"])] = row["n"]
    tests = RestoreTest.objects.filter(started_at__gte=start, started_at__lt=end)
    outcome = {True: "passed", False: "failed", None: "running"}
    for test in tests.values("passed").annotate(n=Count("pk")).order_by():
        counts.setdefault("restore_test", {})[outcome[test["passed"]]] = test["n"]
    last = RestoreTest.objects.filter(started_at__lt=end).order_by("-started_at").first()
    return {
        "configured": True,
        "counts": counts,
        "last_restore_test": (
            {"at": _iso(last.started_at), "outcome": outcome[last.passed]} if last else None
        ),
    }


# --- payments and fraud -----------------------------------------------------------------


def payments_and_fraud(start: datetime.datetime, end: datetime.datetime) -> dict[str, Any]:
    """Card and bank payments of the period by outcome and currency, declines, risk reviews
    and blocks, refunds, per week for the charts.

    Queries: ``SELECT date_trunc('week', created_at), status, risk_decision, failure_code =
    'risk_blocked', currency, COUNT(*), SUM(amount) FROM payments_payment WHERE created_at
    in period GROUP BY 1..5``; ``SELECT status, currency, COUNT(*), SUM(amount) FROM
    payments_refund WHERE created_at in period GROUP BY 1, 2``. Chargebacks: no acquirer
    feed reports them yet (shown as not tracked). ``fraud``: the risk engine's figures per
    week (``payments.fraud.reports.fraud_report``: attempts, blocked, reviewed, approved
    after review, fraud found later, the false-block estimate, the model's precision and
    recall), which the fraud chart draws."""
    from payments.fraud.reports import fraud_report
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
        # The fraud section: the risk engine's own report (payments.fraud.reports), per week.
        "fraud": fraud_report(start, end, period="week"),
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
