"""Security reviews in the admin: the list, each review's page (its sections and charts, as
in the PDF), the PDF, generating one for any period, signing one off (step-up); findings.

Thin: every change goes through ``audit.reviews.services``.
"""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.reviews import services
from audit.reviews.document import review_context
from audit.reviews.models import ReviewFinding, SecurityReview
from audit.reviews.services import ReviewRefused
from security.decorators import step_up_required


class GenerateForm(forms.Form):
    period_start = forms.DateField(label=gettext_lazy("First day"))
    period_end = forms.DateField(label=gettext_lazy("Last day"))
    scanners = forms.BooleanField(
        label=gettext_lazy("Run bandit and pip-audit"), required=False, initial=True
    )


class SignOffForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Note"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    confirm = forms.BooleanField(
        label=gettext_lazy("I reviewed this report and sign it off"), required=True
    )


class FindingForm(forms.ModelForm):
    class Meta:
        model = ReviewFinding
        fields = ("title", "detail", "owner", "due_date")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from django.contrib.auth import get_user_model

        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = get_user_model().objects.filter(is_active=True, is_staff=True)


@admin.register(SecurityReview)
class SecurityReviewAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "period_start",
        "period_end",
        "status",
        "generated_at",
        "signed_at",
        "signed_by",
    )
    list_filter = ("status",)
    ordering = ("-period_end", "-pk")
    change_form_template = "admin/audit/securityreview/review.html"
    change_list_template = "admin/audit/securityreview/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # generated (the page below), never typed in

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "generate/",
                self.admin_site.admin_view(self.generate_view),
                name="audit_securityreview_generate",
            ),
            path(
                "<int:pk>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="audit_securityreview_pdf",
            ),
            path(
                "<int:pk>/sign-off/",
                self.admin_site.admin_view(step_up_required(self.sign_off_view)),
                name="audit_securityreview_sign_off",
            ),
            path(
                "<int:pk>/finding/",
                self.admin_site.admin_view(self.finding_view),
                name="audit_securityreview_finding",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The review as the PDF shows it (the page is the document, nothing to edit)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        review = (
            SecurityReview.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        )
        if review is None:  # Django's own answer: back to the list, saying it is gone
            return super().change_view(request, object_id, form_url, extra_context)
        context = {
            **self.admin_site.each_context(request),
            **review_context(review, review.sections),
            "title": str(review),
            "opts": self.model._meta,
            "may_sign": request.user.has_perm(services.SIGN_OFF_PERMISSION)
            and review.status == SecurityReview.Status.DRAFT,
            "may_raise": request.user.has_perm(services.FINDING_PERMISSION),
        }
        return TemplateResponse(request, self.change_form_template, context)

    def pdf_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        review = get_object_or_404(SecurityReview, pk=pk)
        response = HttpResponse(bytes(review.pdf), content_type="application/pdf")
        response["Content-Disposition"] = (
            f'attachment; filename="security-review-{review.period_start}-{review.period_end}.pdf"'
        )
        return response

    def generate_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(services.GENERATE_PERMISSION):
            raise PermissionDenied
        start, end = services.quarter_of(timezone.now().date() - datetime.timedelta(days=92))
        form = GenerateForm(
            request.POST or None, initial={"period_start": start, "period_end": end}
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                review = services.generate_review(
                    period_start=data["period_start"],
                    period_end=data["period_end"],
                    by=request.user,
                    request=request,
                    scanners=data["scanners"],
                )
            except ReviewRefused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, _("%(review)s generated.") % {"review": review})
                return HttpResponseRedirect(
                    reverse("admin:audit_securityreview_change", args=[review.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Generate a security review"),
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/audit/securityreview/generate.html", context)

    def sign_off_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(services.SIGN_OFF_PERMISSION):
            raise PermissionDenied
        review = get_object_or_404(SecurityReview, pk=pk)
        form = SignOffForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.sign_off_review(
                    review, note=form.cleaned_data["note"], by=request.user, request=request
                )
            except ReviewRefused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, _("%(review)s is signed off.") % {"review": review})
                return HttpResponseRedirect(
                    reverse("admin:audit_securityreview_change", args=[review.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Sign off %(review)s") % {"review": review},
            "opts": self.model._meta,
            "review": review,
            "form": form,
        }
        return TemplateResponse(request, "admin/audit/securityreview/sign_off.html", context)

    def finding_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(services.FINDING_PERMISSION):
            raise PermissionDenied
        review = get_object_or_404(SecurityReview, pk=pk)
        form = FindingForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.raise_finding(
                    review,
                    title=data["title"],
                    detail=data["detail"],
                    owner=data["owner"],
                    due_date=data["due_date"],
                    by=request.user,
                    request=request,
                )
            except ReviewRefused as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                return HttpResponseRedirect(
                    reverse("admin:audit_securityreview_change", args=[review.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Raise a finding of %(review)s") % {"review": review},
            "opts": self.model._meta,
            "review": review,
            "form": form,
        }
        return TemplateResponse(request, "admin/audit/securityreview/finding.html", context)


class FindingStatusForm(forms.ModelForm):
    # Not the model's ``status`` (not editable: only the service moves it).
    new_status = forms.ChoiceField(
        label=gettext_lazy("Status"), choices=ReviewFinding.Status.choices
    )

    class Meta:
        model = ReviewFinding
        fields = ()


@admin.register(ReviewFinding)
class ReviewFindingAdmin(admin.ModelAdmin):
    """Findings across reviews; only their status changes here (through the service)."""

    form = FindingStatusForm
    list_display = ("title", "owner", "due_date", "status", "review_link")
    list_filter = ("status",)
    ordering = ("due_date", "pk")
    readonly_fields = ("title", "detail", "owner", "due_date", "review", "raised_at", "closed_at")
    fields = (
        "title",
        "detail",
        "owner",
        "due_date",
        "review",
        "raised_at",
        "closed_at",
        "new_status",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # raised from a review's page

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if obj is not None:
            form.base_fields["new_status"].initial = obj.status
        return form

    @admin.display(description=gettext_lazy("Raised in"))
    def review_link(self, finding: ReviewFinding) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:audit_securityreview_change", args=[finding.review_id]),
            finding.review.label,
        )

    def save_model(self, request: HttpRequest, obj: ReviewFinding, form: Any, change: bool) -> None:
        services.set_finding_status(
            ReviewFinding.objects.get(pk=obj.pk),
            status=form.cleaned_data["new_status"],
            by=request.user,
            request=request,
        )
