"""Accounts in the admin. Roles and privileges change only through step-up services.

Nobody sees or sets another person's password or second-factor secret here: the
password field shows only whether one is set, the admin's own "change password" page
does not exist, a new account gets no password anyone knows, and the TOTP device list
never shows a key or a QR code. A security officer *resets* an account instead
(``security.accounts.reset_credentials``, a step-up page linked from the account).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest
from django.urls import URLPattern, reverse
from django.utils.html import format_html
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from security import accounts
from security.admin_mixins import StepUpChangesMixin
from security.models import User, UserSession
from security.selectors import confirmed_devices


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
            saved = accounts.update_account(
                user=obj,
                changes={
                    name: form.cleaned_data[name]
                    for name in form.changed_data
                    if name in accounts.ACCOUNT_FIELDS
                },
                by=request.user,
                request=request,
            )
            obj.__dict__.update({f.attname: getattr(saved, f.attname) for f in saved._meta.fields})
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
