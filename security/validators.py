"""Password rules beyond Django's own (PCI DSS 8.3.6 and 8.3.7)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class LettersAndDigitsValidator:
    """A password holds at least one letter and at least one digit."""

    def validate(self, password: str, user: Any = None) -> None:
        if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
            raise ValidationError(
                _("password: must contain both letters and digits."),
                code="password_needs_letters_and_digits",
            )

    def get_help_text(self) -> str:
        return _("Your password must contain both letters and digits.")


class PasswordHistoryValidator:
    """A new password is none of the user's last SECURITY_PASSWORD_HISTORY passwords.

    ``password_changed`` is Django's hook, called after any ``set_password`` +
    ``save``: it remembers the new hash, so every path (forms, admin, services,
    commands) feeds the history.
    """

    def validate(self, password: str, user: Any = None) -> None:
        if user is None or getattr(user, "pk", None) is None:
            return
        from security.selectors import recent_password_hashes

        for encoded in recent_password_hashes(user=user):
            if check_password(password, encoded):
                raise ValidationError(
                    _("password: must differ from your last %(count)d passwords."),
                    code="password_reused",
                    params={"count": settings.SECURITY_PASSWORD_HISTORY},
                )

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is None or getattr(user, "pk", None) is None:
            return
        from security.services import remember_password

        remember_password(user=user)

    def get_help_text(self) -> str:
        return _("Your password must differ from your last %(count)d passwords.") % {
            "count": settings.SECURITY_PASSWORD_HISTORY
        }
