"""The risk thresholds in the admin: one row, edited by fraud analysts through the service."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from billing.exceptions import BillingError
from billing.money import Money
from payments.exceptions import InvalidRiskSettings
from payments.fraud.models import RiskHold, RiskSettings
from payments.fraud.services import (
    CARD_TESTING_FIELDS,
    SCORE_FIELDS,
    ensure_risk_settings,
    lift_risk_hold,
    update_risk_settings,
    validate_card_testing,
    validate_risk_settings,
    validate_scores,
)
from security.admin_mixins import StepUpChangesMixin


def limits_as_text(limits: dict[str, int]) -> str:
    """{"SEK": 1000000} -> "SEK 10000.00" (one currency a line, in major units)."""
    return "\n".join(
        f"{currency} {Money(amount, currency).as_decimal()}"
        for currency, amount in sorted(limits.items())
    )


def limits_from_text(text: str) -> dict[str, int]:
    """Parse "SEK 10000.00" lines into minor units; errors name the line."""
    limits: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise forms.ValidationError(
                f"line {number}: write a currency and an amount, such as SEK 10000.00"
            )
        currency, amount = parts[0].upper(), parts[1].replace(",", ".")
        if currency in limits:
            raise forms.ValidationError(f"line {number}: {currency} is given twice")
        try:
            limits[currency] = Money.from_decimal(Decimal(amount), currency).amount
        except (InvalidOperation, BillingError, ValueError) as exc:
            raise forms.ValidationError(
                f"line {number}: {amount!r} is not an amount in {currency}"
                f" ({getattr(exc, 'message', 'not a number')})"
            ) from None
    return limits


class RiskSettingsForm(forms.ModelForm):
    min_card_amounts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=(
            "One currency a line, in major units, e.g. <code>SEK 10.00</code>: the smallest"
            " card payment, unless it pays the whole amount left."
        ),
    )
    # Set when the estimated effect of new score thresholds has been shown (saved next time).
    confirm_effect = forms.CharField(required=False, widget=forms.HiddenInput)
    new_card_limits = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text=(
            "One currency a line, in major units, e.g. <code>SEK 10000.00</code>. A payment above"
            " the limit on a new card (no payment with it captured for the customer before)"
            " waits for a fraud analyst. A currency not listed is never held for this reason."
        ),
    )

    class Meta:
        model = RiskSettings
        fields = [
            "max_failed_attempts",
            "new_card_limits",
            "max_new_cards_per_customer",
            "max_new_cards_per_address",
            "min_card_amounts",
            "review_score",
            "block_score",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in (*CARD_TESTING_FIELDS, *SCORE_FIELDS):
            # Not sent (an older form): the threshold stays as it is.
            self.fields[name].required = False
        if not self.is_bound:
            self.initial["new_card_limits"] = limits_as_text(self.instance.new_card_limits)
            self.initial["min_card_amounts"] = limits_as_text(self.instance.min_card_amounts)

    def clean_new_card_limits(self) -> dict[str, int]:
        return limits_from_text(self.cleaned_data.get("new_card_limits") or "")

    def clean_min_card_amounts(self) -> dict[str, int]:
        if "min_card_amounts" not in self.data:
            return dict(self.instance.min_card_amounts)
        return limits_from_text(self.cleaned_data.get("min_card_amounts") or "")

    def clean_max_new_cards_per_customer(self) -> Any:
        return self._kept("max_new_cards_per_customer")

    def clean_max_new_cards_per_address(self) -> Any:
        return self._kept("max_new_cards_per_address")

    def clean_review_score(self) -> Any:
        return self._kept("review_score")

    def clean_block_score(self) -> Any:
        return self._kept("block_score")

    def _kept(self, name: str) -> Any:
        value = self.cleaned_data.get(name)
        return getattr(self.instance, name) if value is None else value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            validate_risk_settings(
                max_failed_attempts=cleaned.get("max_failed_attempts"),
                new_card_limits=cleaned.get("new_card_limits"),
            )
            validate_card_testing(**{name: cleaned.get(name) for name in CARD_TESTING_FIELDS})
            validate_scores(**{name: cleaned.get(name) for name in SCORE_FIELDS})
        except InvalidRiskSettings as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            return cleaned
        self._show_effect_first(cleaned)
        return cleaned

    def _show_effect_first(self, cleaned: dict[str, Any]) -> None:
        """A change of the score thresholds is saved only once its estimated effect on the
        last 30 days has been shown (docs/fraud.md, "Thresholds"): the first submission
        shows it and asks to save again with the same values."""
        from payments.fraud.threshold_effect import confirmation_of, effect_message

        review, block = int(cleaned["review_score"]), int(cleaned["block_score"])
        if (review, block) == (self.instance.review_score, self.instance.block_score):
            return
        confirmation = confirmation_of(review, block)
        if self.data.get("confirm_effect") == confirmation:
            return
        data = self.data.copy()  # type: ignore[attr-defined]  # a QueryDict
        data["confirm_effect"] = confirmation
        self.data = data
        self.add_error(None, effect_message(review, block))


@admin.register(RiskSettings)
class RiskSettingsAdmin(StepUpChangesMixin, admin.ModelAdmin):
    """One row; no add or delete. Saving goes through ``update_risk_settings`` (audited;
    loosening needs step-up, so the change page opens only with a fresh second factor)."""

    form = RiskSettingsForm
    list_display = ["__str__", "max_failed_attempts", "limits_display", "updated_by", "updated_at"]
    readonly_fields = ["updated_by", "updated_at"]

    @admin.display(description="new-card review limits")
    def limits_display(self, obj: RiskSettings) -> str:
        return ", ".join(limits_as_text(obj.new_card_limits).splitlines()) or "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.has_view_or_change_permission(request):
            ensure_risk_settings()  # the one row is listed even on a fresh database
        return super().changelist_view(request, extra_context)

    def save_model(self, request: HttpRequest, obj: RiskSettings, form: Any, change: bool) -> None:
        update_risk_settings(
            max_failed_attempts=form.cleaned_data["max_failed_attempts"],
            new_card_limits=form.cleaned_data["new_card_limits"],
            by=request.user,
            request=request,
            **{name: form.cleaned_data[name] for name in (*CARD_TESTING_FIELDS, *SCORE_FIELDS)},
        )


class LiftHoldForm(forms.ModelForm):
    lift_note = forms.CharField(
        label="What the review found (lifts the hold)",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    class Meta:
        model = RiskHold
        fields = ["lift_note"]


@admin.register(RiskHold)
class RiskHoldAdmin(StepUpChangesMixin, admin.ModelAdmin):
    """Card payments held after a card-testing burst. A fraud analyst lifts a hold by
    saving the review's note (``lift_risk_hold``: step-up, audited)."""

    form = LiftHoldForm
    list_display = ["__str__", "kind", "rule", "created_at", "lifted_at", "lifted_by"]
    list_filter = ["kind", "rule", ("lifted_at", admin.EmptyFieldListFilter)]
    readonly_fields = [
        "kind",
        "customer",
        "address",
        "rule",
        "created_at",
        "lifted_at",
        "lifted_by",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.lifted_at is not None:
            return [*self.readonly_fields, "lift_note"]
        return self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: RiskHold, form: Any, change: bool) -> None:
        lifted = lift_risk_hold(
            obj, note=form.cleaned_data["lift_note"], by=request.user, request=request
        )
        obj.lifted_at, obj.lifted_by_id = lifted.lifted_at, lifted.lifted_by_id
