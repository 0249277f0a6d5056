"""Accounts in the admin (roles and privileges change only through step-up services);
background-job attempts (read only) and security alerts (resolved through a service)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from audit.admin import ReadOnlyAdmin
from security import services
from security.exceptions import NotAllowed
from security.models import JobAttempt, SecurityAlert, User, UserSession


@admin.register(User)
class TillitUserAdmin(UserAdmin):
    """Groups, permissions, staff and superuser flags are read-only here: roles change on
    the step-up roles page (security.services.set_user_roles), which audits them."""

    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "roles")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("is_staff", "is_superuser", "roles", "last_login", "date_joined")
    list_display = ("username", "email", "is_active", "is_staff", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")

    @admin.display(description="Roles")
    def roles(self, obj: User) -> str:
        names = ", ".join(obj.groups.values_list("name", flat=True)) or "none"
        if obj.pk is None:
            return names
        return format_html(
            '{} · <a href="{}">change roles</a>',
            names,
            reverse("security:user_roles", args=[obj.pk]),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("roles", "last_login", "date_joined")
        return self.readonly_fields


@admin.register(UserSession)
class UserSessionAdmin(admin.ModelAdmin):
    """Signed-in sessions, for review; ending one is done by its owner or by a password change."""

    list_display = ("user", "created_at", "last_seen_at", "ip")
    readonly_fields = ("user", "session_key", "created_at", "last_seen_at", "ip", "user_agent")
    exclude = ("session_key",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JobAttempt)
class JobAttemptAdmin(ReadOnlyAdmin):
    """Every attempt of every background job: failures stay after a later success, and a
    job whose worker or cluster died shows as lost."""

    list_display = (
        "started_at",
        "func",
        "args",
        "attempt",
        "outcome_display",
        "finished_at",
        "retry_at",
        "error",
    )
    list_filter = ("outcome", "gave_up", "func")
    search_fields = ("func", "task_id", "task_name", "error")
    date_hierarchy = "started_at"
    fields = (
        "func",
        "args",
        "task_id",
        "task_name",
        "attempt",
        "started_at",
        "finished_at",
        "outcome",
        "gave_up",
        "retry_at",
        "error",
    )
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="Outcome", ordering="outcome")
    def outcome_display(self, attempt: JobAttempt) -> str:
        label = attempt.get_outcome_display()
        return f"{label}: no attempts left" if attempt.gave_up else label


@admin.register(SecurityAlert)
class SecurityAlertAdmin(admin.ModelAdmin):
    """Open and past security alerts; a security officer marks one resolved (a service)."""

    list_display = ("summary", "state", "count", "first_raised_at", "last_raised_at", "emailed_at")
    list_filter = ("kind",)
    fields = (
        "kind",
        "summary",
        "detail",
        "count",
        "first_raised_at",
        "last_raised_at",
        "emailed_at",
        "resolved_at",
        "resolved_by",
    )
    readonly_fields = fields
    actions = ("resolve",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Nothing here is edited: an alert is closed with the action, through the service.
        extra = {"show_save": False, "show_save_and_continue": False, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        return None  # every field is read-only; no write outside the services

    @admin.display(description="State", boolean=False)
    def state(self, alert: SecurityAlert) -> str:
        return "open" if alert.is_open else "resolved"

    @admin.action(description="Mark the selected alerts resolved", permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[SecurityAlert]) -> None:
        resolved = 0
        for alert in queryset.filter(resolved_at__isnull=True):
            try:
                services.resolve_security_alert(alert, by=request.user, request=request)
            except NotAllowed as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            resolved += 1
        self.message_user(request, f"{resolved} alert(s) resolved.")
