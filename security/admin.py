"""Accounts in the admin. Roles and privileges change only through step-up services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from security.models import User, UserSession


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
