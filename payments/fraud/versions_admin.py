"""The trained fraud model versions in the admin: what each was trained on and how well it
did on its holdout week, which one is live, and the fraud analyst's promotion (step-up,
audited; a version worse than the live one only with an override and a reason)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from payments.exceptions import FraudModelRefused
from payments.fraud.models import FraudModelVersion
from payments.fraud.training import promote_model_version
from payments.fraud.training.promote import PROMOTE_PERMISSION, holdout_precision
from security.admin_mixins import DecidedByActionsAdmin, step_up_redirect
from security.selectors import is_step_up_fresh


def _figure(metrics: dict[str, Any], name: str, pattern: str = "{:.3f}") -> str:
    value = metrics.get(name)
    return pattern.format(value) if isinstance(value, int | float) else "—"


class PromoteForm(forms.Form):
    override = forms.BooleanField(
        label=gettext_lazy("Make it live even if it does worse than the live version"),
        required=False,
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason (required with the override)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
    )


@admin.register(FraudModelVersion)
class FraudModelVersionAdmin(DecidedByActionsAdmin):
    """Read-only versions; the one change is the promotion page (``promote_model_version``)."""

    # What fits a laptop's screen beside the filters; the rest is on each version's page.
    list_display = ["__str__", "train_window", "average_precision", "roc_auc", "false_blocks"]
    list_filter = ["live", "algorithm"]
    fields = [
        "algorithm",
        "source",
        "seed",
        "train_from",
        "train_until",
        "test_from",
        "test_until",
        "rows_train",
        "rows_test",
        "metrics_table",
        "thresholds",
        "features_list",
        "model_sha256",
        "live",
        "promoted_at",
        "promoted_by",
        "promote_reason",
        "promote_link",
    ]

    def get_queryset(self, request: HttpRequest) -> Any:
        # The list never needs the stored estimator or holdout (megabytes each).
        return super().get_queryset(request).defer("model_bytes", "holdout_bytes")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if request.user.has_perm(PROMOTE_PERMISSION):
            return self.fields
        return [name for name in self.fields if name != "promote_link"]  # the auditor reads

    @admin.display(description=gettext_lazy("training weeks"))
    def train_window(self, obj: FraudModelVersion) -> str:
        return f"{obj.train_from:%Y-%m-%d} to {obj.train_until:%Y-%m-%d}"

    @admin.display(description=gettext_lazy("average precision"))
    def average_precision(self, obj: FraudModelVersion) -> str:
        return _figure(obj.metrics, "average_precision")

    @admin.display(description=gettext_lazy("ROC AUC"))
    def roc_auc(self, obj: FraudModelVersion) -> str:
        return _figure(obj.metrics, "roc_auc")

    @admin.display(description=gettext_lazy("false blocks"))
    def false_blocks(self, obj: FraudModelVersion) -> str:
        return _figure(obj.metrics, "false_block_rate", "{:.3%}")

    @admin.display(description=gettext_lazy("holdout metrics"))
    def metrics_table(self, obj: FraudModelVersion) -> str:
        plain = sorted(
            (name, f"{value:.4f}" if isinstance(value, float) else value)
            for name, value in obj.metrics.items()
            if not isinstance(value, dict | list)
        )
        return format_html(
            "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", plain)
        )

    @admin.display(description=gettext_lazy("at each score (holdout week)"))
    def thresholds(self, obj: FraudModelVersion) -> str:
        head = (
            _("score"),
            _("flagged"),
            _("fraud caught"),
            _("recall"),
            _("precision"),
            _("good flagged"),
            _("share of good"),
        )
        return format_html(
            "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<th>{}</th>", ((h,) for h in head)),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                "<td>{}</td></tr>",
                (
                    (
                        row.get("score"),
                        row.get("flagged"),
                        row.get("fraud_caught"),
                        row.get("recall"),
                        "—" if row.get("precision") is None else row.get("precision"),
                        row.get("good_flagged"),
                        row.get("good_flagged_rate"),
                    )
                    for row in obj.threshold_table
                ),
            ),
        )

    @admin.display(description=gettext_lazy("features (column order)"))
    def features_list(self, obj: FraudModelVersion) -> str:
        return ", ".join(obj.features)

    @admin.display(description=gettext_lazy("promotion"))
    def promote_link(self, obj: FraudModelVersion) -> str:
        if obj.pk is None or obj.live:
            return "—"
        return format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:payments_fraudmodelversion_promote", args=[obj.pk]),
            _("Make this version live…"),
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/promote/",
                self.admin_site.admin_view(self.promote_view),
                name="payments_fraudmodelversion_promote",
            ),
            *super().get_urls(),
        ]

    def promote_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Compare with the live version and promote on a confirmed POST (step-up first)."""
        if not request.user.has_perm(PROMOTE_PERMISSION):
            raise PermissionDenied
        if not is_step_up_fresh(request):
            return step_up_redirect(request)
        queryset = FraudModelVersion.objects.defer("model_bytes", "holdout_bytes")
        version = get_object_or_404(queryset, pk=pk)
        live = queryset.filter(live=True).first()
        form = PromoteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                promote_model_version(
                    version,
                    by=request.user,
                    override=form.cleaned_data["override"],
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
            except FraudModelRefused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                self.message_user(request, _("Version %(pk)s is live.") % {"pk": version.pk})
                return HttpResponseRedirect(
                    reverse("admin:payments_fraudmodelversion_change", args=[version.pk])
                )
        rows = [
            (_("average precision"), "average_precision", "{:.3f}"),
            (_("ROC AUC"), "roc_auc", "{:.3f}"),
            # xgettext:no-python-format
            (_("precision at 80% recall"), "precision_at_80_recall", "{:.3f}"),
            (_("false blocks (share of good)"), "false_block_rate", "{:.3%}"),
        ]
        comparison = [
            (
                label,
                _figure(version.metrics, name, pattern),
                _figure(live.metrics, name, pattern) if live else "—",
            )
            for label, name, pattern in rows
        ]
        if live is not None:
            # What decides: both models on this version's holdout week (as the service does).
            on_this = {
                "mine": holdout_precision(version, version),
                "theirs": holdout_precision(live, version),
            }
            label = _("average precision on this version's holdout week (decides)")
            comparison.insert(0, (label, _figure(on_this, "mine"), _figure(on_this, "theirs")))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Make fraud model version %(pk)s live") % {"pk": version.pk},
            "opts": self.model._meta,
            "version": version,
            "live": live,
            "comparison": comparison,
            "form": form,
        }
        return TemplateResponse(request, "admin/payments/fraud/promote.html", context)
