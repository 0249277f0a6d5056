"""Security's panel on the admin home (``security.admin_dashboard``), for the security
officer and the auditor: the audit chain's health (with "verify now" and "checkpoint
now"), sign-in failures and lockouts, staff without a second factor, dormant staff."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.selectors import chain_health
from security.admin_dashboard import Panel, register_panel
from security.selectors import access_figures


def governance_panel(request: HttpRequest) -> dict[str, Any]:
    """The chain's last verification and checkpoint, and the accounts to look at."""
    health = chain_health()
    access = access_figures()
    checkpoint = health.last_checkpoint
    return {
        "verification": health.last_verification,
        "running": health.running,
        "checkpoint": checkpoint,
        "checkpoint_age": timezone.now() - checkpoint.created_at if checkpoint else None,
        "unsigned_events": health.unsigned_events,
        "failed_logins": access.failed_logins_24h,
        "lockouts": access.lockouts_24h,
        "without_factor": access.staff_without_factor,
        "dormant": access.dormant_staff,
        "dormant_days": settings.SECURITY_DORMANT_STAFF_DAYS,
        "may_list_users": request.user.has_perm("security.view_user"),
        "may_list_lockouts": request.user.has_perm("axes.view_accessfailurelog"),
    }


register_panel(
    Panel(
        key="governance",
        title=_("Audit chain and accounts"),
        permissions=("audit.view_auditcheckpoint",),
        figures=governance_panel,
        template="admin/dashboard/governance.html",
        order=50,
    )
)
