"""The customer's privacy page: the policy and the version accepted, data export, erasure.

Thin: read through selectors, one service call, render. Export and erasure need a second
factor confirmed just now (the step-up detour brings the customer back here).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from billing.portal.decorators import portal_view
from billing.privacy import selectors, services
from billing.privacy.policy import current_policy
from security.exceptions import StepUpRequired
from security.selectors import has_second_factor


def _step_up_then(next_url: str) -> HttpResponse:
    return redirect(f"{reverse('security:step_up')}?{urlencode({'next': next_url})}")


@require_GET
@portal_view
def privacy(request: HttpRequest) -> HttpResponse:
    customer = request.portal_customer  # type: ignore[attr-defined]
    policy = current_policy()
    accepted = selectors.latest_acceptance(request.user)
    return render(
        request,
        "portal/privacy.html",
        {
            "policy": policy,
            "policy_text": render_to_string(policy.template, request=request),
            "accepted": accepted,
            "accepted_current": accepted is not None and accepted.version == policy.version,
            "export": selectors.latest_export(customer),
            "erasure": selectors.open_erasure(customer),
            "has_second_factor": has_second_factor(user=request.user),
            "retention": services.retention_table(),
        },
    )


@require_POST
@portal_view
def accept_policy(request: HttpRequest) -> HttpResponse:
    try:
        services.accept_privacy_policy(
            user=request.user, version=request.POST.get("version", ""), request=request
        )
    except services.PrivacyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Thank you: you accepted the current privacy policy."))
    return redirect("privacy:privacy")


@require_POST
@portal_view
def request_export(request: HttpRequest) -> HttpResponse:
    try:
        services.request_data_export(by=request.user, request=request)
    except StepUpRequired:
        return _step_up_then(reverse("privacy:privacy"))
    except services.PrivacyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("We are preparing your export. We email you a link to download it once it is ready."),
        )
    return redirect("privacy:privacy")


@require_GET
@portal_view
def download(request: HttpRequest, token: str) -> HttpResponse:
    try:
        export = services.download_data_export(token=token, by=request.user, request=request)
    except StepUpRequired:
        return _step_up_then(request.get_full_path())
    except services.PrivacyError as exc:
        return render(request, "portal/privacy_link.html", {"error": str(exc)}, status=404)
    response = HttpResponse(bytes(export.content or b""), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="tillit-data-export.zip"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@portal_view
def request_erasure(request: HttpRequest) -> HttpResponse:
    customer = request.portal_customer  # type: ignore[attr-defined]
    try:
        services.request_erasure(customer=customer, by=request.user, request=request)
    except StepUpRequired:
        return _step_up_then(reverse("privacy:privacy"))
    except services.PrivacyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _(
                "We received your request. A security officer reviews it; once it is carried"
                " out your account is removed."
            ),
        )
    return redirect("privacy:privacy")
