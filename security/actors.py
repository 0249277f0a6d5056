"""Who does what a service does: the type of every service's ``by=``.

``Actor`` is a person (the user model, ``security.User``), someone not signed in
(``AnonymousUser``: a sign-in, a reset link) or the platform itself (``audit.SYSTEM``,
the string ``"system"``: schedules, jobs, migrations). A service that needs a person
says so in its signature (``by: Person``) or checks before it reads a person's fields::

    if not is_system(by) and not by.has_perm("security.change_roles"): ...
    created_by = user_of(by)  # the signed-in user, or None for the platform
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

from typing_extensions import TypeIs

from audit import SYSTEM

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from security.models import User

System: TypeAlias = Literal["system"]
Person: TypeAlias = "User | AnonymousUser"
Actor: TypeAlias = "User | AnonymousUser | System"


def is_system(actor: Actor) -> TypeIs[System]:
    """The platform itself acts (``audit.SYSTEM``), not a person."""
    return actor == SYSTEM


def user_of(actor: Actor) -> User | None:
    """The signed-in user who acts, or None (the platform, or someone not signed in): what a
    ``created_by`` column takes."""
    from django.contrib.auth import get_user_model

    return actor if isinstance(actor, get_user_model()) else None


def signed_in(actor: Actor) -> User:
    """The signed-in user who acts; anyone else (the platform, someone not signed in) is
    refused with ``NotAllowed`` naming the user. For what only a person may do."""
    from security.exceptions import NotAllowed

    user = user_of(actor)
    if user is None:
        raise NotAllowed("user: sign in first")
    return user
