"""Backups and restore tests in the admin: read-only (security officers and auditors).

A failed restore test shows in red on the list and raised a security alert (banner).
Registered by ``audit.admin`` (imported at its end, after ``ReadOnlyAdmin``).
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from audit.admin import ReadOnlyAdmin
from audit.backups.models import BackupRun, RestoreTest


@admin.register(BackupRun)
class BackupRunAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "status", "started_at", "finished_at", "size_bytes")
    list_filter = ("kind", "status")
    fields = (
        "name",
        "kind",
        "status",
        "path",
        "started_at",
        "finished_at",
        "size_bytes",
        "manifest_sha256",
        "recipients",
        "error",
        "deleted_at",
    )
    readonly_fields = fields


@admin.register(RestoreTest)
class RestoreTestAdmin(ReadOnlyAdmin):
    list_display = ("backup_name", "outcome", "started_at", "finished_at", "keys_source")
    list_filter = ("passed",)
    fields = (
        "backup_name",
        "outcome",
        "started_at",
        "finished_at",
        "keys_source",
        "check_list",
        "error",
    )
    readonly_fields = fields

    @admin.display(description=_("Outcome"))
    def outcome(self, test: RestoreTest) -> str:
        if test.passed is None:
            return str(_("running"))
        if test.passed:
            return format_html('<span class="restore-passed">{}</span>', _("passed"))
        return format_html(
            '<strong class="restore-failed" style="color:#ba2121">{}</strong>', _("FAILED")
        )

    @admin.display(description=_("Checks"))
    def check_list(self, test: RestoreTest) -> str:
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{}: {} — {}</li>",
                (
                    (c["name"], _("ok") if c["ok"] else _("FAILED"), c["detail"])
                    for c in test.checks
                ),
            ),
        )
