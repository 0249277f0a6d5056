"""Sign-in, second factor, account and password pages: thin, every change is a service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse, reverse_lazy
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_otp_webauthn import exceptions as webauthn_exceptions
from django_otp_webauthn import views as webauthn_views

from security import accounts, forms, selectors, services
from security.decorators import mfa_required, step_up_required
from security.exceptions import InvalidCode, NotAllowed, SecurityError
from security.mfa import base32_secret, qr_svg_data_uri
from security.models import RoleGrant, UserSession
from security.redirects import UnsafeRedirect, next_path


def _refuse_next(request: HttpRequest, exc: UnsafeRedirect) -> HttpResponse:
    """A tampered ``next``: say so, and do nothing else."""
    return render(request, "400.html", {"message": str(exc)}, status=400)


class LoginView(auth_views.LoginView):
    """Step one: password (username or e-mail). Step two follows when a factor is owed.

    ``next`` must be a path on this site: a link carrying any other is answered with
    the form and a warning (the address is dropped); a form posting one is refused
    without checking the password, so nothing happens and nothing is counted.
    """

    form_class = forms.LoginForm
    template_name = "security/login.html"
    redirect_authenticated_user = False
    next_url = ""
    next_error = ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            self.next_url = next_path(request, "")
        except UnsafeRedirect as exc:
            self.next_error = str(exc)
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if self.next_error:
            response = self.render_to_response(self.get_context_data(form=self.get_form()))
            response.status_code = 400
            return response
        return super().post(request, *args, **kwargs)

    def get_redirect_url(self, request: HttpRequest | None = None) -> str:
        return self.next_url

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "next_error": self.next_error}

    def get_success_url(self) -> str:
        target = self.next_url or reverse("home")
        user = self.request.user
        if selectors.needs_enrollment(user):
            return f"{reverse('security:enroll_totp')}?{urlencode({'next': target})}"
        if selectors.needs_second_factor(user):
            return f"{reverse('security:verify')}?{urlencode({'next': target})}"
        return target


def _second_factor_page(request: HttpRequest, *, next_url: str, title: str) -> HttpResponse:
    """Ask for a code (TOTP or backup); on success go on to ``next_url``."""
    form = forms.CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.verify_second_factor(request=request, code=form.cleaned_data["code"])
        except InvalidCode as exc:
            form.add_error("code", str(exc))
        else:
            return HttpResponseRedirect(next_url)
    return render(request, "security/verify.html", {"form": form, "next": next_url, "title": title})


def verify(request: HttpRequest) -> HttpResponse:
    """Step two: a TOTP code, a backup code or a passkey for the signed-in user."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("security:login"))
    try:
        next_url = next_path(request, reverse("home"))
    except UnsafeRedirect as exc:
        return _refuse_next(request, exc)
    if selectors.needs_enrollment(request.user):
        return HttpResponseRedirect(
            f"{reverse('security:enroll_totp')}?{urlencode({'next': next_url})}"
        )
    return _second_factor_page(request, next_url=next_url, title=_("Confirm it is you"))


def step_up(request: HttpRequest) -> HttpResponse:
    """Confirm a second factor again before a sensitive action."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("security:login"))
    try:
        next_url = next_path(request, reverse("security:account"))
    except UnsafeRedirect as exc:
        return _refuse_next(request, exc)
    return _second_factor_page(
        request, next_url=next_url, title=_("Confirm this action with a second factor")
    )


def enroll_totp(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app: a QR code drawn here, then its first code confirms it."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("security:login"))
    if selectors.has_second_factor(user=request.user) and not selectors.is_session_verified(
        request
    ):
        # A second device is added only from a verified session.
        return HttpResponseRedirect(
            f"{reverse('security:verify')}?{urlencode({'next': request.path})}"
        )
    try:
        next_url = next_path(request, reverse("security:account"))
    except UnsafeRedirect as exc:
        return _refuse_next(request, exc)
    if request.method == "POST" and "start" in request.POST:
        services.start_totp_enrollment(user=request.user)
        return HttpResponseRedirect(f"{request.path}?{urlencode({'next': next_url})}")
    device = selectors.pending_totp_device(user=request.user)
    form = forms.TotpConfirmForm(request.POST or None)
    if request.method == "POST" and device is not None and form.is_valid():
        try:
            codes = services.confirm_totp_device(
                device=device, code=form.cleaned_data["code"], request=request
            )
        except InvalidCode as exc:
            form.add_error("code", str(exc))
        else:
            return render(request, "security/backup_codes.html", {"codes": codes, "next": next_url})
    context: dict[str, Any] = {"form": form, "device": device, "next": next_url}
    if device is not None:
        context["qr"] = qr_svg_data_uri(device.config_url)
        context["secret"] = base32_secret(device.key)
    return render(request, "security/enroll_totp.html", context)


@mfa_required
def account(request: HttpRequest) -> HttpResponse:
    """The user's factors and sessions, with the actions on them."""
    user = request.user
    return render(
        request,
        "security/account.html",
        {
            "devices": [
                d
                for d in selectors.confirmed_devices(user=user)
                if d.__class__.__name__ != "BackupCodeDevice"
            ],
            "backup_codes_left": selectors.backup_codes_left(user=user),
            "sessions": selectors.active_sessions(user=user),
            "current_key": request.session.session_key,
        },
    )


@require_POST
@step_up_required
def remove_device(request: HttpRequest) -> HttpResponse:
    """Remove one of your second factors (step-up)."""
    device = selectors.device_of_user(
        user=request.user, persistent_id=request.POST.get("device", "")
    )
    if device is None:
        messages.error(request, _("device: no such device of yours."))
        return HttpResponseRedirect(reverse("security:account"))
    try:
        services.remove_device(device=device, by=request.user, request=request)
    except SecurityError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The device was removed."))
    return HttpResponseRedirect(reverse("security:account"))


@require_POST
@step_up_required
def new_backup_codes(request: HttpRequest) -> HttpResponse:
    """Replace your backup codes (step-up); the new ones are shown once."""
    codes = services.regenerate_backup_codes(user=request.user, by=request.user, request=request)
    return render(
        request,
        "security/backup_codes.html",
        {"codes": codes, "next": reverse("security:account")},
    )


@require_POST
@mfa_required
def end_session(request: HttpRequest, pk: int) -> HttpResponse:
    """End one of your other sessions."""
    tracked = get_object_or_404(UserSession, pk=pk, user=request.user)
    services.end_session(user_session=tracked, by=request.user, request=request)
    return HttpResponseRedirect(reverse("security:account"))


@require_POST
@mfa_required
def end_other_sessions(request: HttpRequest) -> HttpResponse:
    """End every session of yours but this one."""
    services.end_other_sessions(user=request.user, by=request.user, request=request)
    return HttpResponseRedirect(reverse("security:account"))


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Sign out: the session is deleted server-side."""
    logout(request)
    return HttpResponseRedirect(reverse("security:login"))


@mfa_required
def password_change(request: HttpRequest) -> HttpResponse:
    """Change your password; your other sessions end."""
    form = PasswordChangeForm(request.user, request.POST or None)  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        services.change_password(
            user=request.user,
            new_password=form.cleaned_data["new_password1"],
            by=request.user,
            request=request,
        )
        messages.success(request, _("Your password was changed; your other sessions have ended."))
        return HttpResponseRedirect(reverse("security:account"))
    return render(request, "security/form.html", {"form": form, "title": _("Change password")})


@permission_required("security.unlock_account", raise_exception=True)
@step_up_required
def unlock(request: HttpRequest) -> HttpResponse:
    """A security officer lifts a lockout (step-up, audited)."""
    form = forms.UsernameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        count = services.unlock_account(
            username=form.cleaned_data["username"], by=request.user, request=request
        )
        messages.success(request, f"Lockout lifted ({count} attempt records cleared).")
        return HttpResponseRedirect(reverse("security:unlock"))
    return render(request, "security/form.html", {"form": form, "title": "Lift a lockout"})


@permission_required("security.change_roles", raise_exception=True)
@step_up_required
def user_roles(request: HttpRequest, pk: int) -> HttpResponse:
    """A security officer sets an account's roles (step-up, audited)."""
    target = get_object_or_404(get_user_model(), pk=pk)
    initial = {"roles": list(target.groups.values_list("name", flat=True))}
    form = forms.RolesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            grant = services.set_user_roles(
                user=target, roles=form.cleaned_data["roles"], by=request.user, request=request
            )
        except NotAllowed as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("security:user_roles", args=[target.pk]))
        if grant is None:
            messages.success(request, "Roles saved.")
        else:
            messages.success(
                request,
                "A role that can move money or read card data needs a second security"
                " officer: the change waits for approval on the role grants page.",
            )
        return HttpResponseRedirect(reverse("admin:security_user_change", args=[target.pk]))
    from security.roles import FOUR_EYES_ROLES, ROLE_NAMES, ROLE_PURPOSES

    chosen = set(form["roles"].value() or [])
    rows = [
        {
            "name": name,
            "purpose": ROLE_PURPOSES.get(name, "").replace("`", ""),
            "checked": name in chosen,
            "four_eyes": name in FOUR_EYES_ROLES,
        }
        for name in ROLE_NAMES
    ]
    return render(
        request,
        "security/user_roles.html",
        {"form": form, "rows": rows, "target": target, "title": f"Roles of {target}"},
    )


@permission_required("security.change_roles", raise_exception=True)
@step_up_required
def role_grants(request: HttpRequest) -> HttpResponse:
    """Role grants waiting for a second security officer; approve or reject (step-up)."""
    if request.method == "POST":
        grant = get_object_or_404(
            RoleGrant, pk=request.POST.get("grant", ""), status=RoleGrant.Status.PENDING
        )
        approve = request.POST.get("decision") == "approve"
        try:
            services.decide_role_grant(grant, approve=approve, by=request.user, request=request)
        except NotAllowed as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Approved: the roles apply." if approve else "Rejected.")
        return HttpResponseRedirect(reverse("security:role_grants"))
    pending = selectors.pending_role_grants()
    return render(request, "security/role_grants.html", {"grants": pending})


@permission_required(accounts.RESET_PERMISSION, raise_exception=True)
@step_up_required
def reset_credentials(request: HttpRequest, pk: int) -> HttpResponse:
    """A security officer resets another account's password and factors (step-up, audited):
    the owner is e-mailed a link and chooses their own."""
    target = get_object_or_404(get_user_model(), pk=pk)
    if request.method == "POST":
        try:
            done = accounts.reset_credentials(user=target, by=request.user, request=request)
        except NotAllowed as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"{target} was reset: {len(done['factors_removed'])} second factor(s) removed,"
                f" {done['sessions_ended']} session(s) ended; the owner was e-mailed a link"
                " to choose a new password.",
            )
        return HttpResponseRedirect(reverse("admin:security_user_change", args=[target.pk]))
    return render(request, "security/reset_credentials.html", {"target": target})


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a reset link; the answer never says whether the address has an account."""

    form_class = forms.TillitPasswordResetForm
    template_name = "security/form.html"
    email_template_name = "security/password_reset_email.txt"
    subject_template_name = "security/password_reset_subject.txt"
    success_url = reverse_lazy("security:password_reset_done")
    extra_context = {"title": gettext_lazy("Reset your password")}

    def form_valid(self, form: Any) -> HttpResponse:
        services.record_password_reset_requested(
            email=form.cleaned_data["email"], request=self.request
        )
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Set a new password from a single-use link (30 minutes)."""

    form_class = forms.TillitSetPasswordForm
    template_name = "security/password_reset_confirm.html"
    success_url = reverse_lazy("security:login")
    post_reset_login = False


class PasskeyRegistrationCompleteView(webauthn_views.CompleteCredentialRegistrationView):
    """django-otp-webauthn's registration, audited."""

    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(*args, **kwargs)
        if response.status_code == 200:
            services.record_passkey_registered(request=self.request)
        return response


class PasskeyAuthenticationCompleteView(webauthn_views.CompleteCredentialAuthenticationView):
    """django-otp-webauthn's verification; the session is then marked verified (step-up clock)."""

    def complete_auth(self, device: Any) -> Any:
        if not self.request.user.is_authenticated:
            # Passwordless sign-in is off (the ceremony already refuses an anonymous
            # session); should one get here, it is the same JSON 403, never a 500.
            raise webauthn_exceptions.PasswordlessLoginDisabled()
        services.mark_session_verified(request=self.request, device=device, method="passkey")
        return device.user
