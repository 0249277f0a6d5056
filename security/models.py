"""Accounts. Security is the ground floor: it imports no domain app."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person who signs in: staff in the admin, or a customer in the portal.

    A customer user's link to its customer lives in ``billing`` (which may import
    ``security``, never the other way round).
    """

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        db_table = "security_user"

    def __str__(self) -> str:
        return self.get_username()
