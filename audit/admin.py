"""The audit log in the admin: read-only for everyone, superusers included.

Events open on the last three months (served by the ``created_at`` index);
"All time" and the date hierarchy reach the rest. The checkpoint list
publishes the signing key's public half and offers each checkpoint as the
JSON file an auditor keeps. Nothing here writes.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from audit.backups.models import BackupRun, RestoreTest
from audit.exceptions import AuditKeyError
from audit.models import AuditCheckpoint, AuditEvent
from audit.selectors import checkpoint_document, get_published_public_key

RECENT_DAYS = {"1d": 1, "7d": 7, "90d": 90, "365d": 365}
DEFAULT_RECENT = "90d"


class RecentFilter(admin.SimpleListFilter):
    """Time window; defaults to the last three months unless the date hierarchy is used."""

    title = "time"
    parameter_name = "recent"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("1d", "Last 24 hours"),
            ("7d", "Last 7 days"),
            ("90d", "Last 3 months"),
            ("365d", "Last 12 months"),
            ("all", "All time"),
        ]

    def value(self) -> str | None:
        chosen = super().value()
        if chosen is None and not self._drilling_down:
            return DEFAULT_RECENT
        return chosen

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        self._drilling_down = any(key.startswith("created_at__") for key in request.GET)
        super().__init__(request, params, model, model_admin)

    def choices(self, changelist: Any) -> Any:
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        days = RECENT_DAYS.get(self.value() or "")
        if days is None:
            return queryset
        return queryset.filter(created_at__gte=timezone.now() - timedelta(days=days))


class ActorFilter(admin.SimpleListFilter):
    """The actors of the last three months (at most 100), by label."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        since = timezone.now() - timedelta(days=90)
        actors = (
            AuditEvent.objects.filter(created_at__gte=since)
            .order_by("actor_label", "actor_type", "actor_id")
            .values_list("actor_type", "actor_id", "actor_label")
            .distinct()[:100]
        )
        return [(f"{kind}:{ident}", f"{label} ({kind})") for kind, ident, label in actors]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.value():
            return queryset
        kind, _, ident = str(self.value()).partition(":")
        return queryset.filter(actor_type=kind, actor_id=ident)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewing only: no add, change or delete for anyone, superusers included."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "seq",
        "created_at",
        "action",
        "actor_label",
        "actor_type",
        "object_type",
        "object_id",
        "ip",
    )
    list_display_links = ("seq",)
    list_filter = (RecentFilter, "action", ActorFilter, "actor_type", "object_type")
    search_fields = ("action", "actor_label", "=actor_id", "object_type", "=object_id")
    date_hierarchy = "created_at"
    ordering = ("-seq",)
    list_per_page = 100
    # COUNT(*) over the whole table grows with it; the filtered count is enough.
    show_full_result_count = False
    readonly_fields = (
        "seq",
        "created_at",
        "actor_type",
        "actor_id",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "ip",
        "user_agent",
        "details_json",
        "prev_hash",
        "hash",
    )
    fields = readonly_fields

    @admin.display(description="details")
    def details_json(self, event: AuditEvent) -> str:
        return json.dumps(event.details, indent=2, sort_keys=True, ensure_ascii=False)


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "head_hash", "key_id", "export_link")
    date_hierarchy = "created_at"
    ordering = ("-seq",)
    show_full_result_count = False
    readonly_fields = ("seq", "head_hash", "created_at", "key_id", "public_key", "signature")
    fields = readonly_fields
    change_list_template = "admin/audit/auditcheckpoint/change_list.html"

    @admin.display(description="export")
    def export_link(self, checkpoint: AuditCheckpoint) -> str:
        return format_html('<a href="{}/export/">JSON</a>', checkpoint.pk)

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "<int:pk>/export/",
            self.admin_site.admin_view(self.export_view),
            name="audit_auditcheckpoint_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        checkpoint = get_object_or_404(AuditCheckpoint, pk=pk)
        response = HttpResponse(
            json.dumps(checkpoint_document(checkpoint), indent=2) + "\n",
            content_type="application/json",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="audit-checkpoint-{checkpoint.seq}.json"'
        )
        return response

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = dict(extra_context or {})
        try:
            context["public_key"] = get_published_public_key()
        except AuditKeyError as exc:
            context["public_key_error"] = str(exc)
        return super().changelist_view(request, extra_context=context)


# Backups and restore tests: read-only (security officers and auditors). A failed restore
# test shows in red on the list and raised a security alert (the banner).


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
