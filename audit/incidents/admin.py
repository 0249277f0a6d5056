"""Incidents in the admin: the list, the incident page with its timeline and evidence, the
response page (status, notes, evidence) and the containment page (step-up).

Thin: every change goes through ``audit.incidents.services`` or
``audit.incidents.containment``; nothing here writes through the ORM.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.incidents import containment, services
from audit.incidents.exceptions import IncidentError
from audit.incidents.models import Incident
from audit.incidents.services import TRANSITIONS
from payments.freeze import active_card_payment_freeze
from security.api.selectors import api_client_named
from security.decorators import step_up_required
from security.identity import normalize_login


class RespondForm(forms.Form):
    """One of: move the status (with a note), add a note, link audit events."""

    what = forms.ChoiceField(
        label=gettext_lazy("Action"),
        choices=[
            ("status", gettext_lazy("Move the status")),
            ("note", gettext_lazy("Add a note")),
            ("evidence", gettext_lazy("Link audit events")),
        ],
    )
    status = forms.ChoiceField(
        label=gettext_lazy("New status"), choices=Incident.Status.choices, required=False
    )
    text = forms.CharField(
        label=gettext_lazy("Note"), widget=forms.Textarea(attrs={"rows": 4}), required=False
    )
    seqs = forms.CharField(
        label=gettext_lazy("Audit event numbers"),
        required=False,
        help_text=gettext_lazy("Separated by commas or spaces, e.g. 1041, 1042"),
    )


class ContainmentForm(forms.Form):
    """One containment action; ``username`` for the per-account ones, ``reason`` for a freeze."""

    ACTIONS = [
        ("freeze_card_payments", gettext_lazy("Freeze all card payments")),
        ("lift_card_payment_freeze", gettext_lazy("Lift the card payment freeze")),
        ("revoke_user_sessions", gettext_lazy("Revoke all sessions of a user")),
        ("revoke_staff_sessions", gettext_lazy("Revoke all sessions of all staff")),
        ("revoke_client_api_tokens", gettext_lazy("Revoke all API tokens of a client")),
        ("revoke_user_api_tokens", gettext_lazy("Revoke all API tokens of a user")),
        ("revoke_all_api_tokens", gettext_lazy("Revoke all API tokens of all clients")),
        ("disable_staff_account", gettext_lazy("Disable a staff account")),
        ("rotate_vault_keys", gettext_lazy("Rotate the data key and the browser key now")),
    ]
    action = forms.ChoiceField(label=gettext_lazy("Action"), choices=ACTIONS)
    username = forms.CharField(label=gettext_lazy("Login name"), required=False, max_length=150)
    client_id = forms.CharField(label=gettext_lazy("API client id"), required=False, max_length=100)
    reason = forms.CharField(label=gettext_lazy("Reason"), required=False, max_length=300)
    confirm = forms.BooleanField(
        label=gettext_lazy("I confirm this containment action"), required=True
    )


class IncidentChangeForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = ("title", "summary", "kind", "severity", "commander", "affected_customers")


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    form = IncidentChangeForm
    list_display = ("__str__", "severity", "status", "kind", "detected_at", "commander")
    list_filter = ("status", "severity", "kind")
    search_fields = ("title", "=detector_key")
    ordering = ("-detected_at", "-pk")
    raw_id_fields = ("affected_customers",)
    readonly_fields = (
        "status",
        "respond_links",
        "opened_by",
        "detector_key",
        "detected_at",
        "triaged_at",
        "contained_at",
        "eradicated_at",
        "recovered_at",
        "closed_at",
        "evidence",
        "timeline",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "title",
                    "summary",
                    "kind",
                    "severity",
                    "commander",
                    "status",
                    "respond_links",
                )
            },
        ),
        (gettext_lazy("Affected customers"), {"fields": ("affected_customers",)}),
        (
            gettext_lazy("Lifecycle"),
            {
                "fields": (
                    "opened_by",
                    "detector_key",
                    "detected_at",
                    "triaged_at",
                    "contained_at",
                    "eradicated_at",
                    "recovered_at",
                    "closed_at",
                )
            },
        ),
        (gettext_lazy("Evidence and timeline"), {"fields": ("evidence", "timeline")}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ((None, {"fields": ("title", "summary", "kind", "severity", "commander")}),)
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return self.readonly_fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "commander":
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True, is_staff=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an incident is closed, never deleted

    def get_queryset(self, request: HttpRequest) -> QuerySet[Incident]:
        return super().get_queryset(request).select_related("commander")

    @admin.display(description=gettext_lazy("Respond"))
    def respond_links(self, obj: Incident) -> str:
        if obj.pk is None:
            return "—"
        return format_html(
            '<a class="button" href="{}">{}</a> <a class="button" href="{}">{}</a>',
            reverse("admin:audit_incident_respond", args=[obj.pk]),
            _("Status, notes and evidence…"),
            reverse("admin:audit_incident_containment", args=[obj.pk]),
            _("Containment actions…"),
        )

    @admin.display(description=gettext_lazy("Linked audit events"))
    def evidence(self, obj: Incident) -> str:
        events = list(obj.audit_events.order_by("seq")[:200])
        if not events:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">#{} {}</a>',
            (
                (reverse("admin:audit_auditevent_change", args=[e.seq]), e.seq, e.action)
                for e in events
            ),
        )

    @admin.display(description=gettext_lazy("Timeline"))
    def timeline(self, obj: Incident) -> str:
        entries = list(obj.entries.all())
        if not entries:
            return "—"
        return format_html(
            "<ol>{}</ol>",
            format_html_join(
                "",
                "<li>{} · {} · {}: {}</li>",
                (
                    (f"{e.at:%Y-%m-%d %H:%M:%S} UTC", e.get_kind_display(), e.author, e.text)
                    for e in entries
                ),
            ),
        )

    def save_model(self, request: HttpRequest, obj: Incident, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            fields = [n for n in form.changed_data if n in services._EDITABLE]
            services.update_incident(
                obj, changes={n: data[n] for n in fields}, by=request.user, request=request
            )
            return
        incident, _created = services.open_incident(
            title=data["title"],
            summary=data.get("summary", ""),
            kind=data["kind"],
            severity=data["severity"],
            by=request.user,
            request=request,
        )
        if data.get("commander") is not None:
            incident = services.update_incident(
                incident,
                changes={"commander": data["commander"]},
                by=request.user,
                request=request,
            )
        # The admin goes on with ``obj`` (its messages and redirect): it is the new incident.
        obj.pk = incident.pk
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change and "affected_customers" in form.changed_data:
            services.set_affected_customers(
                form.instance,
                customers=form.cleaned_data["affected_customers"],
                by=request.user,
                request=request,
            )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/respond/",
                self.admin_site.admin_view(self.respond_view),
                name="audit_incident_respond",
            ),
            path(
                "containment/",
                self.admin_site.admin_view(step_up_required(self.containment_view)),
                name="audit_incident_containment_any",
            ),
            path(
                "<int:pk>/containment/",
                self.admin_site.admin_view(step_up_required(self.containment_view)),
                name="audit_incident_containment",
            ),
            *super().get_urls(),
        ]

    def respond_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Move the status, add a note or link evidence: one service call each."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        incident = get_object_or_404(Incident, pk=pk)
        form = RespondForm(request.POST or None, initial={"what": "status"})
        if request.method == "POST" and form.is_valid():
            data, by = form.cleaned_data, request.user
            try:
                if data["what"] == "status":
                    services.change_incident_status(
                        incident, to=data["status"], note=data["text"], by=by, request=request
                    )
                elif data["what"] == "note":
                    services.add_incident_note(incident, text=data["text"], by=by, request=request)
                else:
                    seqs = data["seqs"].replace(",", " ").split()
                    services.link_audit_events(incident, seqs=seqs, by=by, request=request)
            except (IncidentError, ValueError) as exc:
                field = {"note": "text"}.get(getattr(exc, "field", ""), getattr(exc, "field", ""))
                form.add_error(field if field in form.fields else None, str(exc))
            else:
                messages.success(request, _("%(incident)s updated.") % {"incident": incident})
                return HttpResponseRedirect(
                    reverse("admin:audit_incident_change", args=[incident.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Respond to %(incident)s") % {"incident": incident},
            "opts": self.model._meta,
            "incident": incident,
            "next_statuses": sorted(TRANSITIONS[incident.status]),
            "form": form,
        }
        return TemplateResponse(request, "admin/audit/incident/respond.html", context)

    def containment_view(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        """The containment actions (security officers, step-up): one service call each."""
        if not request.user.has_perm(containment.CONTAIN_PERMISSION):
            raise PermissionDenied
        incident = get_object_or_404(Incident, pk=pk) if pk is not None else None
        form = ContainmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = self._contain(request, incident, form.cleaned_data)
            except IncidentError as exc:
                field = exc.field if exc.field in form.fields else None
                form.add_error(field, exc.message)
            else:
                messages.success(request, outcome)
                if incident is not None:
                    return HttpResponseRedirect(
                        reverse("admin:audit_incident_change", args=[incident.pk])
                    )
                return HttpResponseRedirect(reverse("admin:audit_incident_containment_any"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Containment actions"),
            "opts": self.model._meta,
            "incident": incident,
            "freeze": active_card_payment_freeze(),
            "form": form,
        }
        return TemplateResponse(request, "admin/audit/incident/containment.html", context)

    def _contain(self, request: HttpRequest, incident: Incident | None, data: Any) -> str:
        action, by = data["action"], request.user
        common: dict[str, Any] = {"incident": incident, "by": by, "request": request}
        if action == "freeze_card_payments":
            containment.freeze_card_payments(reason=data["reason"], **common)
            return _("Card payments are frozen.")
        if action == "lift_card_payment_freeze":
            containment.lift_card_payment_freeze(**common)
            return _("Card payments are open again.")
        if action == "revoke_staff_sessions":
            ended = containment.revoke_staff_sessions(**common)
            return _("%(count)s staff session(s) ended.") % {"count": ended}
        if action == "revoke_all_api_tokens":
            ended = containment.revoke_api_tokens(**common)
            return _("%(count)s API token(s) revoked.") % {"count": ended}
        if action == "revoke_client_api_tokens":
            application = api_client_named(data["client_id"].strip())
            if application is None:
                raise IncidentError(_("no API client with this client id"), field="client_id")
            ended = containment.revoke_api_tokens(application=application, **common)
            return _("%(count)s API token(s) revoked.") % {"count": ended}
        if action == "rotate_vault_keys":
            containment.rotate_vault_keys(**common)
            return _("A new data key and a new card-entry key are in use.")
        name = normalize_login(data["username"].strip())
        user = get_user_model().objects.filter(username=name).first() if name else None
        if user is None:
            raise IncidentError(_("no account with this login name"), field="username")
        if action == "revoke_user_api_tokens":
            ended = containment.revoke_api_tokens(user=user, **common)
            return _("%(count)s API token(s) revoked.") % {"count": ended}
        if action == "revoke_user_sessions":
            ended = containment.revoke_user_sessions(user=user, **common)
            return _("%(count)s session(s) of %(user)s ended.") % {"count": ended, "user": user}
        containment.disable_staff_account(user=user, **common)
        return _("%(user)s is disabled and signed out.") % {"user": user}
