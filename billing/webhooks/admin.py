"""Staff admin for webhooks: endpoints (registered and changed through the services with a
fresh second factor; the secret shown once, at creation and on a roll), the event log,
and deliveries with every attempt and a replay action.

No page ever shows a stored secret: the sealed columns are not fields of any form, and
the secret page is rendered from the value the service returned, never stored (no
message, no session), with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.html import format_html, format_html_join

from audit.admin import ReadOnlyAdmin
from billing.admin_format import format_details
from billing.webhooks import services, transport
from billing.webhooks.events import EVENT_TYPES
from billing.webhooks.exceptions import WebhookError
from billing.webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from security.admin_mixins import StepUpChangesMixin


class EndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {why}") for name, why in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "events", "active")

    def clean_url(self) -> str:
        url = self.cleaned_data.get("url", "")
        try:
            transport.check_url(url)
        except WebhookError as exc:
            raise forms.ValidationError(exc.message) from None
        return str(url)


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(StepUpChangesMixin, admin.ModelAdmin):
    form = EndpointForm
    list_display = ("public_id", "url", "description", "active", "event_list", "secret_created_at")
    list_filter = ("active",)
    search_fields = ("public_id", "url", "description")
    readonly_fields = (
        "public_id",
        "secret_created_at",
        "previous_secret_expires_at",
        "created_at",
        "created_by",
        "roll_link",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("url", "description", "events")
        return ("url", "description", "events", "active", *self.readonly_fields)

    @admin.display(description="events")
    def event_list(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events)

    @admin.display(description="signing secret")
    def roll_link(self, endpoint: WebhookEndpoint) -> str:
        url = reverse("admin:webhooks_webhookendpoint_roll", args=[endpoint.pk])
        return format_html('<a class="button" href="{}">Roll the secret</a>', url)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # its deliveries are evidence: disable it instead

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = services.update_webhook_endpoint(
                obj,
                by=request.user,
                request=request,
                **{name: data[name] for name in form.changed_data if name in data},
            )
        else:
            saved, secret = services.create_webhook_endpoint(
                url=data["url"],
                events=data["events"],
                description=data.get("description", ""),
                by=request.user,
                request=request,
            )
            request._webhook_secret = secret  # type: ignore[attr-defined]  # this response only
        obj.pk = saved.pk
        obj._state.adding = False

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None) -> Any:
        secret = getattr(request, "_webhook_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        endpoint = WebhookEndpoint.objects.get(pk=obj.pk)
        return self._secret_page(request, endpoint, secret)

    def _secret_page(self, request: HttpRequest, endpoint: WebhookEndpoint, secret: str) -> Any:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Signing secret (shown once)",
            "endpoint": endpoint,
            "secret": secret,
            "previous_valid_until": endpoint.previous_secret_expires_at,
        }
        response = TemplateResponse(request, "admin/webhooks/secret_shown.html", context)
        return _no_store(response.render())

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/roll/",
                wrap(self.roll_view),
                name="webhooks_webhookendpoint_roll",
            ),
            *super().get_urls(),
        ]

    def roll_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: confirm (with the overlap); POST: roll, then show the new secret once."""
        endpoint = self.get_object(request, object_id)
        if endpoint is None or not self.has_view_permission(request, endpoint):
            raise Http404("No such endpoint")
        if not request.user.has_perm(services.ROLL_PERMISSION):
            raise PermissionDenied
        from security.admin_mixins import step_up_redirect
        from security.selectors import is_step_up_fresh

        if not is_step_up_fresh(request):
            return step_up_redirect(request)
        if request.method == "POST":
            try:
                hours = int(request.POST.get("overlap_hours", ""))
                endpoint, secret = services.roll_webhook_secret(
                    endpoint, overlap_hours=hours, by=request.user, request=request
                )
            except ValueError:
                self.message_user(request, "The overlap is a number of hours.", messages.ERROR)
            except WebhookError as exc:
                self.message_user(request, f"Not rolled: {exc.message}", messages.ERROR)
            else:
                return self._secret_page(request, endpoint, secret)
        from django.conf import settings

        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Roll the signing secret",
            "endpoint": endpoint,
            "overlap_hours": settings.WEBHOOKS_ROLL_OVERLAP_HOURS,
        }
        return TemplateResponse(request, "admin/webhooks/roll_confirm.html", context)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "type", "customer", "object_id", "created_at")
    list_filter = ("type",)
    search_fields = ("public_id", "object_id")
    list_select_related = ("customer",)
    fields = ("public_id", "type", "created_at", "customer", "object_id", "snapshot")
    readonly_fields = fields

    @admin.display(description="data")
    def snapshot(self, event: Event) -> str:
        """The snapshot as rows, amounts in currency units (receivers get minor units)."""
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", format_details(event.data))
        return format_html("<table>{}</table>", rows)


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "succeeded",
        "error",
        "response_body",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "event__type")
    search_fields = ("public_id", "event__public_id", "endpoint__public_id")
    list_select_related = ("event", "endpoint")
    fields = (
        "public_id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
        "delivered_at",
    )
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["replay"]

    @admin.display(description="event")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not request.user.has_perm(services.REPLAY_PERMISSION):
            actions.pop("replay", None)  # offered only to those who may (the service checks too)
        return actions

    @admin.action(description="Send the selected deliveries again", permissions=["view"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        replayed = 0
        for delivery in queryset:
            try:
                services.replay_webhook_delivery(delivery, by=request.user, request=request)
            except WebhookError as exc:
                self.message_user(request, f"{delivery.public_id}: {exc.message}", messages.ERROR)
            else:
                replayed += 1
        self.message_user(request, f"{replayed} deliveries queued again.")
