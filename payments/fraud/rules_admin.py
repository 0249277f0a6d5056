"""The fraud analysts' rules, lists, evaluations, backtests and reports in the admin.

Every form calls one service (``payments.fraud.rule_services``); a rule that does not
check or a list value that does not parse is a form error and nothing is saved. Adding
and changing open only with a fresh second factor (``StepUpChangesMixin``). The backtest
("Test this rule") and report pages need ``payments.decide_risk`` (fraud analysts).
"""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from payments.exceptions import InvalidFraudRule, InvalidListEntry, PaymentsError
from payments.fraud.backtest import MAX_DAYS, CandidateRule, backtest
from payments.fraud.models import (
    FraudListEntry,
    FraudRule,
    FraudRuleVersion,
    RiskEvaluation,
    RuleAction,
)
from payments.fraud.reports import fraud_report, model_history
from payments.fraud.rule_services import (
    RULE_FIELDS,
    add_list_entry,
    check_rule_expression,
    create_fraud_rule,
    normalize_list_value,
    remove_list_entry,
    update_fraud_rule,
)
from payments.fraud.services import DECIDE_PERMISSION
from security.admin_mixins import StepUpChangesMixin
from security.charts import Series, daily_bars


def _require_analyst(request: HttpRequest) -> None:
    if not request.user.has_perm(DECIDE_PERMISSION):
        raise PermissionDenied


def _error_on(form: forms.BaseForm, exc: PaymentsError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


class FraudRuleForm(forms.ModelForm):
    class Meta:
        model = FraudRule
        fields = list(RULE_FIELDS)
        widgets = {"expression": forms.Textarea(attrs={"rows": 3, "cols": 80})}

    def clean_expression(self) -> str:
        try:
            return check_rule_expression(self.cleaned_data.get("expression")).text
        except InvalidFraudRule as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(FraudRule)
class FraudRuleAdmin(StepUpChangesMixin, admin.ModelAdmin):
    """``{action} if {expression}``; each save a new version (the old kept), audited."""

    form = FraudRuleForm
    list_display = ["__str__", "action", "position", "enabled", "version", "updated_by"]
    list_filter = ["action", "enabled"]
    readonly_fields = ["version", "updated_at", "updated_by", "test_link", "versions_display"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # switched off instead: its versions stay

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(DECIDE_PERMISSION) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(DECIDE_PERMISSION) and super().has_view_permission(
            request, obj
        )

    @admin.display(description="versions")
    def versions_display(self, obj: FraudRule) -> str:
        if obj.pk is None:
            return "—"
        rows = FraudRuleVersion.objects.filter(rule=obj).select_related("changed_by")
        return format_html(
            "<table><tr><th>version</th><th>when</th><th>by</th><th>action</th>"
            "<th>condition</th><th>on</th><th>position</th><th>description</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td>"
                "<td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        v.version,
                        f"{v.changed_at:%Y-%m-%d %H:%M}",
                        v.changed_by or "—",
                        v.action,
                        v.expression,
                        "on" if v.enabled else "off",
                        v.position,
                        v.description,
                    )
                    for v in rows
                ),
            ),
        )

    @admin.display(description="backtest")
    def test_link(self, obj: FraudRule) -> str:
        if obj.pk is None:
            return "—"
        return format_html(
            '<a class="button" href="{}">Test this rule…</a>',
            reverse("admin:payments_fraudrule_backtest", args=[obj.pk]),
        )

    def save_model(self, request: HttpRequest, obj: FraudRule, form: Any, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in RULE_FIELDS}
        if change:
            saved = update_fraud_rule(obj, by=request.user, request=request, **values)
        else:
            saved = create_fraud_rule(by=request.user, request=request, **values)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None  # the versions are written by the service

    def get_urls(self) -> list[Any]:
        return [
            path(
                "backtest/",
                self.admin_site.admin_view(self.backtest_view),
                name="payments_fraudrule_backtest_new",
            ),
            path(
                "<int:pk>/backtest/",
                self.admin_site.admin_view(self.backtest_view),
                name="payments_fraudrule_backtest",
            ),
            *super().get_urls(),
        ]

    def backtest_view(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        """Test a rule (new, or a new text of this one) on the last N days' evaluations."""
        _require_analyst(request)
        rule = get_object_or_404(FraudRule, pk=pk) if pk is not None else None
        initial: dict[str, Any] = {"days": 30}
        if rule is not None:
            initial |= {"action": rule.action, "expression": rule.expression}
        form = BacktestForm(request.POST or None, initial=initial)
        result = None
        if request.method == "POST" and form.is_valid():
            result = backtest(
                days=form.cleaned_data["days"],
                rule=CandidateRule(
                    action=form.cleaned_data["action"],
                    expression=form.cleaned_data["compiled"],
                    replaces=rule.pk if rule is not None else None,
                    position=rule.position if rule is not None else 0,
                ),
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Test this rule"),
            "opts": self.model._meta,
            "rule": rule,
            "form": form,
            "result": result,
            "outcomes": _outcome_rows(result) if result else [],
        }
        return TemplateResponse(request, "admin/payments/fraud/backtest.html", context)


class BacktestForm(forms.Form):
    action = forms.ChoiceField(choices=RuleAction.choices)
    expression = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}))
    days = forms.IntegerField(min_value=1, max_value=MAX_DAYS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "expression" in cleaned:
            try:
                cleaned["compiled"] = check_rule_expression(cleaned["expression"])
            except InvalidFraudRule as exc:
                self.add_error("expression", exc.message)
        return cleaned


def _outcome_rows(result: Any) -> list[dict[str, Any]]:
    before, after = result.before.as_dict(), result.after.as_dict()
    return [
        {"outcome": RuleAction(outcome).label, "before": before[outcome], "after": after[outcome]}
        for outcome in before
    ]


class ListEntryForm(forms.ModelForm):
    class Meta:
        model = FraudListEntry
        fields = ["list", "key", "value", "reason", "expires_at"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "key" in cleaned and "value" in cleaned:
            try:
                cleaned["value"] = normalize_list_value(cleaned["key"], cleaned["value"])
            except InvalidListEntry as exc:
                _error_on(self, exc)
        expires = cleaned.get("expires_at")
        if expires is not None and expires <= timezone.now():
            self.add_error("expires_at", _("the expiry must be in the future"))
        return cleaned


class RemoveEntryForm(forms.ModelForm):
    removal_note = forms.CharField(
        label="Why the entry is removed (takes it off the list)",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    class Meta:
        model = FraudListEntry
        fields = ["removal_note"]


@admin.register(FraudListEntry)
class FraudListEntryAdmin(StepUpChangesMixin, admin.ModelAdmin):
    """Allow and block lists. Adding calls ``add_list_entry``; an entry is taken off its
    list by saving a note (``remove_list_entry``); both audited."""

    list_display = ["__str__", "list", "key", "value", "expires_at", "added_by", "removed_at"]
    list_filter = ["list", "key", ("removed_at", admin.EmptyFieldListFilter)]
    search_fields = ["value"]
    _shown = ["list", "key", "value", "reason", "expires_at", "added_at", "added_by"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(DECIDE_PERMISSION) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(DECIDE_PERMISSION) and super().has_view_permission(
            request, obj
        )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = ListEntryForm if obj is None else RemoveEntryForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["list", "key", "value", "reason", "expires_at"]
        return [*self._shown, "removed_at", "removed_by", "removal_note"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        done = ["removal_note"] if obj.removed_at is not None else []
        return [*self._shown, "removed_at", "removed_by", *done]

    def save_model(
        self, request: HttpRequest, obj: FraudListEntry, form: Any, change: bool
    ) -> None:
        if change:
            saved = remove_list_entry(
                obj, note=form.cleaned_data["removal_note"], by=request.user, request=request
            )
        else:
            saved = add_list_entry(
                by=request.user,
                request=request,
                **{name: form.cleaned_data[name] for name in ListEntryForm.Meta.fields},
            )
        obj.pk = saved.pk
        obj.refresh_from_db()


@admin.register(RiskEvaluation)
class RiskEvaluationAdmin(admin.ModelAdmin):
    """The engine's decisions as made (read-only), and the fraud reports."""

    list_display = ["payment", "created_at", "decision", "decided_by", "score", "duration_us"]
    list_filter = ["decision", "decided_by"]
    list_select_related = ["payment"]
    readonly_fields = (
        "payment",
        "created_at",
        "decision",
        "decided_by",
        "score",
        "model_version",
        "top_features",
        "matched",
        "features",
        "duration_us",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        return [
            path(
                "reports/",
                self.admin_site.admin_view(self.reports_view),
                name="payments_riskevaluation_reports",
            ),
            *super().get_urls(),
        ]

    def reports_view(self, request: HttpRequest) -> HttpResponse:
        """Daily (last 30 days) or monthly (last 12 months) fraud figures with charts."""
        _require_analyst(request)
        period = "month" if request.GET.get("period") == "month" else "day"
        now = timezone.now()
        today = timezone.localdate(now)
        if period == "day":
            first = today - datetime.timedelta(days=29)
            buckets = [first + datetime.timedelta(days=n) for n in range(30)]
        else:
            first = (today.replace(day=1) - datetime.timedelta(days=335)).replace(day=1)
            buckets = _months(first, today)
        start = timezone.make_aware(datetime.datetime.combine(first, datetime.time()))
        report = fraud_report(start, now, period=period)
        by_day = {datetime.date.fromisoformat(row["period"]): row for row in report["periods"]}

        def series(name: str, key: str, colour: str, figure: str) -> Series:
            return Series(name, key, colour, {d: r[figure] for d, r in by_day.items()})

        chart = daily_bars(
            buckets,
            [
                series(_("allowed"), "ok", "#417690", "attempts_allowed"),
                series(_("held for review"), "review", "#e0a800", "reviewed"),
                series(_("blocked"), "failed", "#ba2121", "blocked"),
            ],
            label=_("Card payment attempts by decision"),
        )
        missed = daily_bars(
            buckets,
            [
                series(_("fraud found later"), "failed", "#ba2121", "fraud_later"),
                series(_("blocked, found good"), "review", "#e0a800", "blocked_good"),
            ],
            label=_("What the engine missed and what it blocked wrongly"),
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Fraud reports"),
            "opts": self.model._meta,
            "period": period,
            "report": report,
            "chart": chart,
            "missed_chart": missed,
            "models": model_history(),
        }
        return TemplateResponse(request, "admin/payments/fraud/reports.html", context)


def _months(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    months = []
    month = first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + datetime.timedelta(days=32)).replace(day=1)
    return months
