"""Forms of the sign-in, MFA and account pages. Saving goes through services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from security import mfa, selectors, services


class LoginForm(AuthenticationForm):
    """Username (staff) or e-mail address (customers), and password."""

    username = forms.CharField(
        label=_("E-mail or username"),
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("That login name and password do not match an active account."),
    }


class CodeForm(forms.Form):
    """A 6-digit TOTP code or a backup code; the format is checked before any lookup."""

    code = forms.CharField(
        label=_("Code"),
        max_length=mfa.MAX_CODE_INPUT,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
        error_messages={
            "max_length": _("code: too long; enter a 6-digit code or a backup code."),
            "required": _("code: enter the code from your authenticator app or a backup code."),
        },
    )

    def clean_code(self) -> str:
        code = mfa.normalize_code(self.cleaned_data["code"])
        if not (mfa.is_totp_code(code) or mfa.is_backup_code(code)):
            raise forms.ValidationError(
                _("code: enter the 6 digits from your app or a backup code like abcde-fghij.")
            )
        return code


class TotpConfirmForm(forms.Form):
    """The first code from a newly added authenticator app."""

    code = forms.CharField(
        label=_("Code from your app"),
        max_length=mfa.MAX_CODE_INPUT,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        error_messages={"max_length": _("code: too long; enter the 6 digits your app shows.")},
    )

    def clean_code(self) -> str:
        code = mfa.normalize_code(self.cleaned_data["code"])
        if not mfa.is_totp_code(code):
            raise forms.ValidationError(_("code: enter the 6 digits your app shows."))
        return code


class UsernameForm(forms.Form):
    """The login name whose lockout a security officer lifts."""

    username = forms.CharField(label=_("Login name"), max_length=150)


class RolesForm(forms.Form):
    """The exact set of roles an account should hold."""

    roles = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, choices=()
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from security.roles import ROLE_NAMES

        field = self.fields["roles"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(name, name) for name in ROLE_NAMES]


class TillitPasswordResetForm(PasswordResetForm):
    """Django's reset form: the same answer whether or not the address has an account.
    The email is written in the account holder's language (a customer's profile), else
    in the language of the page that asked for it."""

    email = forms.EmailField(label=_("E-mail"), max_length=254)

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        language = selectors.language_of(context["user"]) or translation.get_language()
        with translation.override(language):
            super().send_mail(
                subject_template_name,
                email_template_name,
                context,
                from_email,
                to_email,
                html_email_template_name=html_email_template_name,
            )

    def get_users(self, email: str) -> Any:
        """Active accounts with exactly this (normalized) address, including those with no
        password yet: a new or reset account's owner asks for a fresh link here."""
        from django.contrib.auth import get_user_model

        from security.identity import normalize_login

        return iter(
            get_user_model()._default_manager.filter(email=normalize_login(email), is_active=True)
        )


class TillitSetPasswordForm(SetPasswordForm):
    """Sets the new password from a reset link through the service (all sessions end)."""

    def save(self, commit: bool = True) -> Any:
        services.reset_password(
            user=self.user, new_password=self.cleaned_data["new_password1"], request=None
        )
        return self.user
