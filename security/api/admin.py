"""API clients in the admin: registered, changed and removed only by security officers
(``security.manage_api_clients``), each through a step-up service that audits it
(security.services.clients). A confidential client's secret is shown once, on the page that
answers its registration, and never again (it is stored hashed). django-oauth-toolkit's
own admin pages (applications, tokens, grants) are removed: nobody browses tokens, and a
client registered there would skip the checks and the audit."""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

from security.admin_mixins import StepUpChangesMixin
from security.api.scopes import all_scopes
from security.exceptions import SecurityError
from security.models import ApiClient
from security.services import clients

for _model in (Application, AccessToken, RefreshToken, Grant, IDToken):
    with contextlib.suppress(NotRegistered):
        admin.site.unregister(_model)


def _scope_choices() -> list[tuple[str, str]]:
    return [(scope, scope) for scope in sorted(all_scopes())]


class ApiClientForm(forms.ModelForm):
    name = forms.CharField(max_length=200, label=_("Name"))
    kind = forms.ChoiceField(choices=ApiClient.Kind.choices, label=_("Kind"))
    scopes = forms.MultipleChoiceField(
        choices=_scope_choices, widget=forms.CheckboxSelectMultiple, label=_("Scopes")
    )
    redirect_uris = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=_("Redirect URIs"),
        help_text=_("Apps for customers only: exact https:// URLs, one per line."),
    )

    class Meta:
        model = ApiClient
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            application = self.instance.application
            self.fields["kind"].disabled = True
            self.initial.update(
                name=application.name,
                kind=self.instance.kind,
                scopes=self.instance.allowed_scopes,
                redirect_uris="\n".join(application.redirect_uris.split()),
            )


@admin.register(ApiClient)
class ApiClientAdmin(StepUpChangesMixin, admin.ModelAdmin):
    form = ApiClientForm
    list_display = ("name", "kind", "client_id", "scopes", "created_at")
    list_select_related = ("application",)
    fields = ("name", "kind", "scopes", "redirect_uris")

    def _may(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.has_perm(clients.MANAGE_PERMISSION))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}  # removing goes through the delete page, one client at a time

    @admin.display(description=_("Name"))
    def name(self, obj: ApiClient) -> str:
        return str(obj.application.name)

    @admin.display(description=_("Client id"))
    def client_id(self, obj: ApiClient) -> str:
        return str(obj.application.client_id)

    @admin.display(description=_("Scopes"))
    def scopes(self, obj: ApiClient) -> str:
        return " ".join(obj.allowed_scopes)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        base = super().get_form(request, obj, change=change, **kwargs)
        admin_self = self

        class BoundForm(base):  # type: ignore[misc,valid-type]
            def clean(self) -> dict[str, Any]:
                data = super().clean()
                if self.errors:
                    return data
                try:
                    admin_self._save(request, self.instance, data, change=bool(self.instance.pk))
                except SecurityError as exc:
                    field = getattr(exc, "field", None)
                    message = str(getattr(exc, "message", exc))
                    self.add_error(field if field in self.fields else None, message)
                return data

        return BoundForm

    def _save(
        self, request: HttpRequest, obj: ApiClient, data: dict[str, Any], *, change: bool
    ) -> None:
        """The service call, made while the form is validated so that a refusal shows on
        its field; save_model then has nothing left to write."""
        uris = " ".join(str(data.get("redirect_uris", "")).split())
        if change:
            clients.update_api_client(
                obj,
                name=data["name"],
                scopes=list(data["scopes"]),
                redirect_uris=uris,
                by=request.user,
                request=request,
            )
            return
        registered = clients.register_api_client(
            name=data["name"],
            kind=data["kind"],
            scopes=list(data["scopes"]),
            redirect_uris=uris,
            by=request.user,
            request=request,
        )
        obj.pk = registered.client.pk
        obj.application = registered.client.application
        request._api_client_registered = registered  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Written by the service already (see ``_save``)."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing related to write."""

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # audited by the service (api.client_registered)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # audited by the service (api.client_changed)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        return None  # audited by the service (api.client_removed)

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: Any = None
    ) -> HttpResponse:
        registered = getattr(request, "_api_client_registered", None)
        context = {
            **self.admin_site.each_context(request),
            "title": _("API client registered"),
            "client": registered.client if registered else obj,
            "client_secret": registered.client_secret if registered else "",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/security/api_client_registered.html", context)

    def delete_model(self, request: HttpRequest, obj: ApiClient) -> None:
        clients.remove_api_client(obj, by=request.user, request=request)
