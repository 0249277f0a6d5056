"""Accounts in the admin. Roles and privileges change only through step-up services;
background-job attempts (read only) and security alerts (resolved through a service).

Nobody sees or sets another person's password or second-factor secret here: the
password field shows only whether one is set, the admin's own "change password" page
does not exist, a new account gets no password anyone knows, and the TOTP device list
never shows a key or a QR code. A security officer *resets* an account instead
(``security.accounts.reset_credentials``, a step-up page linked from the account).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import BooleanField, ExpressionWrapper, OuterRef, QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.admin import ReadOnlyAdmin
from security import accounts, services
from security.admin_mixins import DecidedByActionsAdmin, StepUpChangesMixin
from security.api import admin as api_admin  # noqa: F401 - API clients (security officers)
from security.exceptions import NotAllowed
from security.models import JobAttempt, SecurityAlert, User, UserSession
from security.selectors import confirmed_devices, enrolled_factor


class NewAccountForm(forms.ModelForm):
    """A new account: who it is for, never a password (the owner chooses it)."""

    email = forms.EmailField(
        required=True, help_text="The owner receives the link to choose a password here."
    )

    class Meta:
        model = User
        fields = ("username", "email", "first_name", "last_name")


@admin.register(User)
class TillitUserAdmin(StepUpChangesMixin, UserAdmin):
    """Groups, permissions, staff and superuser flags are read-only here: roles change on
    the step-up roles page (security.services.set_user_roles), which audits them. The
    e-mail address is read-only once the account exists: a password link goes there."""

    fieldsets = (
        (None, {"fields": ("username", "credentials")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "roles")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"fields": ("username", "email", "first_name", "last_name")}),)
    add_form = NewAccountForm
    readonly_fields = (
        "credentials",
        "email",
        "is_staff",
        "is_superuser",
        "roles",
        "last_login",
        "date_joined",
    )
    list_display = (
        "username",
        "full_name",
        "role_names",
        "second_factor",
        "is_active",
        "last_login",
    )
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # Roles and the second factor of a page of users in two queries, whatever its size.
        return (
            super()
            .get_queryset(request)
            .prefetch_related("groups")
            .annotate(
                has_factor=ExpressionWrapper(
                    enrolled_factor(OuterRef("pk")), output_field=BooleanField()
                )
            )
        )

    @admin.display(description=_("name"), ordering="last_name")
    def full_name(self, obj: User) -> str:
        return obj.get_full_name() or "—"

    @admin.display(description=_("roles"))
    def role_names(self, obj: User) -> str:
        return ", ".join(sorted(group.name for group in obj.groups.all())) or "—"

    @admin.display(description=_("second factor"), boolean=True, ordering="has_factor")
    def second_factor(self, obj: User) -> bool:
        return bool(getattr(obj, "has_factor", False))

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

    @admin.display(description="Password and second factors")
    def credentials(self, obj: User) -> str:
        """Whether a password is set and how many factors: never the hash, never a secret."""
        if obj.pk is None:
            return "none: the owner chooses a password from the e-mailed link"
        password = "set" if obj.has_usable_password() else "not set (the owner has a link)"
        factors = len([d for d in confirmed_devices(user=obj) if d.confirmed])
        return format_html(
            'Password {} · {} second factor(s) · <a href="{}">reset password and'
            " second factors</a>",
            password,
            factors,
            reverse("security:reset_credentials", args=[obj.pk]),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("roles", "last_login", "date_joined")
        return self.readonly_fields

    def get_urls(self) -> list[URLPattern]:
        # No page sets another person's password (the reset page replaces it).
        return [
            url
            for url in super().get_urls()
            if getattr(url, "name", "") != "auth_user_password_change"
        ]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if change:
            accounts.update_account(
                user=obj,
                changes={
                    name: form.cleaned_data[name]
                    for name in form.changed_data
                    if name in accounts.ACCOUNT_FIELDS
                },
                by=request.user,
                request=request,
            )
            obj.refresh_from_db()  # the form's object shows what the service saved
            return
        created = accounts.create_account(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            first_name=form.cleaned_data.get("first_name", ""),
            last_name=form.cleaned_data.get("last_name", ""),
            by=request.user,
            request=request,
        )
        obj.pk = created.pk
        obj._state.adding = False
        obj._state.db = created._state.db
        obj.password = created.password
        obj.username = created.username
        obj.email = created.email


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin):
    """Signed-in sessions, for review; ending one is done by its owner or by a password change."""

    list_display = ("user", "created_at", "last_seen_at", "ip")
    readonly_fields = ("user", "session_key", "created_at", "last_seen_at", "ip", "user_agent")
    exclude = ("session_key",)


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
class SecurityAlertAdmin(DecidedByActionsAdmin):
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
    actions = ("resolve",)

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


class ReadOnlyTOTPDeviceAdmin(TOTPDeviceAdmin):
    """django-otp's TOTP device list, read-only and without the key, the QR code or its
    config page: a second-factor secret is its owner's alone (OTP_ADMIN_HIDE_SENSITIVE_DATA
    is on as well). Nobody adds a device with a key of their choosing for someone else."""

    readonly_fields = [
        "user",
        "name",
        "confirmed",
        "created_at",
        "last_used_at",
        "step",
        "t0",
        "digits",
        "tolerance",
        "drift",
        "throttling_failure_timestamp",
        "throttling_failure_count",
    ]
    exclude = ["key"]

    def get_list_display(self, request: HttpRequest) -> Any:
        return [name for name in super().get_list_display(request) if name != "qrcode_link"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            (
                section,
                {"fields": [f for f in options["fields"] if f not in ("key", "qrcode_link")]},
            )
            for section, options in super().get_fieldsets(request, obj)
        ]

    def get_urls(self) -> list[URLPattern]:
        # admin.ModelAdmin's URLs only: not django-otp's config and qrcode views.
        return admin.ModelAdmin.get_urls(self)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, ReadOnlyTOTPDeviceAdmin)
