"""Roles given and taken: a security officer changes a user's roles (step-up, never their
own); a role that moves money or reads card data waits for a second officer
(``RoleGrant``); ``sync_roles`` keeps each role's group equal to the matrix
(``security.roles``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import SYSTEM, record
from security.actors import Actor, Person, is_system, signed_in
from security.exceptions import NotAllowed, UnknownRole
from security.models import RoleGrant
from security.services.mfa import require_step_up
from security.services.sessions import end_sessions

User = get_user_model()


GRANT_DAYS = 7


def set_user_roles(
    *, user: Any, roles: list[str], by: Actor, request: HttpRequest | None
) -> RoleGrant | None:
    """Give the user exactly these roles (groups); security officers only, with step-up.

    Nobody changes their own roles. Adding a role that can move money or read card data
    (``roles.FOUR_EYES_ROLES``) is not applied: it becomes a pending ``RoleGrant`` that
    another security officer approves (``approve_role_grant``), which is returned. Any
    other change applies at once and the user's sessions end, so new privileges start
    with a new session key.
    """
    from security.roles import FOUR_EYES_ROLES, ROLE_NAMES

    unknown = sorted(set(roles) - set(ROLE_NAMES))
    if unknown:
        raise UnknownRole(f"roles: unknown role(s) {', '.join(unknown)}")
    if by != SYSTEM and not by.has_perm("security.change_roles"):
        raise NotAllowed("roles: needs the Security officer role")
    if by != SYSTEM and by.pk == user.pk:
        raise NotAllowed("roles: nobody changes their own roles; ask another security officer")
    require_step_up(request, by)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        before = sorted(locked.groups.values_list("name", flat=True))
        after = sorted(set(roles))
        sensitive = sorted((set(after) - set(before)) & set(FOUR_EYES_ROLES))
        if sensitive and not is_system(by):
            if RoleGrant.objects.filter(user=locked, status=RoleGrant.Status.PENDING).exists():
                raise NotAllowed(
                    "roles: a grant for this account is already waiting for approval;"
                    " approve or reject it first"
                )
            grant = RoleGrant.objects.create(
                user=locked,
                roles=after,
                before=before,
                requested_by=signed_in(by),
                requested_at=timezone.now(),
            )
            record(
                "security.role_grant_requested",
                actor=by,
                obj=locked,
                request=request,
                grant_id=grant.pk,
                before=before,
                after=after,
                needs_approval_for=sensitive,
            )
            return grant
        _apply_roles(locked, after, before=before, by=by, request=request)
    return None


def _apply_roles(
    locked: Any, roles: list[str], *, before: list[str], by: Actor, request: HttpRequest | None
) -> None:
    groups = list(Group.objects.filter(name__in=roles))
    locked.groups.set(groups)
    end_sessions(user=locked, keep_session_key=None)
    record(
        "security.roles_changed",
        actor=by,
        obj=locked,
        request=request,
        before=before,
        after=sorted(g.name for g in groups),
    )


def decide_role_grant(
    grant: RoleGrant, *, approve: bool, by: Person, request: HttpRequest | None
) -> RoleGrant:
    """A second security officer approves (the roles apply) or rejects a pending grant.

    Four eyes: neither the officer who asked nor the account's owner may approve; the
    one who asked may withdraw it (reject). Step-up; audited
    (``security.role_grant_approved`` / ``security.role_grant_rejected``). An approval is
    refused when the account's roles changed since the request or it is older than
    GRANT_DAYS days.
    """
    if not by.has_perm("security.change_roles"):
        raise NotAllowed("roles: needs the Security officer role")
    require_step_up(request, by)
    with transaction.atomic():
        locked_grant = RoleGrant.objects.select_for_update().get(pk=grant.pk)
        if locked_grant.status != RoleGrant.Status.PENDING:
            raise NotAllowed("grant: this grant was already decided")
        if approve and signed_in(by).pk in (locked_grant.requested_by_id, locked_grant.user_id):
            raise NotAllowed(
                "grant: a second security officer approves (not the one who asked, not its owner)"
            )
        locked = User.objects.select_for_update().get(pk=locked_grant.user_id)
        current = sorted(locked.groups.values_list("name", flat=True))
        if approve and current != locked_grant.before:
            raise NotAllowed("grant: the account's roles changed since it was asked; ask again")
        if approve and timezone.now() - locked_grant.requested_at > timedelta(days=GRANT_DAYS):
            raise NotAllowed(f"grant: older than {GRANT_DAYS} days; ask again")
        locked_grant.status = RoleGrant.Status.APPROVED if approve else RoleGrant.Status.REJECTED
        locked_grant.decided_by = signed_in(by)
        locked_grant.decided_at = timezone.now()
        locked_grant.save(update_fields=["status", "decided_by", "decided_at"])
        record(
            "security.role_grant_approved" if approve else "security.role_grant_rejected",
            actor=by,
            obj=locked,
            request=request,
            grant_id=locked_grant.pk,
            requested_by=locked_grant.requested_by.get_username(),
            after=locked_grant.roles,
        )
        if approve:
            _apply_roles(locked, locked_grant.roles, before=current, by=by, request=request)
    return locked_grant


def sync_roles(
    *, by: Actor = SYSTEM, record_new_groups: bool = True
) -> dict[str, dict[str, list[str]]]:
    """Make every role's group hold exactly the matrix's permissions (security.roles).

    Permissions of models not installed yet are skipped (reported as ``missing``).
    Returns, per role, what was added, removed and missing. A change to an existing
    group is always audited; filling newly created groups is audited unless
    ``record_new_groups`` is false (the post-migrate run on an empty database).
    """
    from django.contrib.auth.models import Permission

    from security.roles import ROLES

    report: dict[str, dict[str, list[str]]] = {}
    silent: set[str] = set()
    with transaction.atomic():
        for name, wanted in ROLES.items():
            group, created = Group.objects.select_for_update().get_or_create(name=name)
            found: dict[str, Permission] = {}
            for perm in wanted:
                app_label, codename = perm.split(".", 1)
                obj = Permission.objects.filter(
                    content_type__app_label=app_label, codename=codename
                ).first()
                if obj is not None:
                    found[perm] = obj
            current = {
                f"{p.content_type.app_label}.{p.codename}": p
                for p in group.permissions.select_related("content_type")
            }
            added = sorted(set(found) - set(current))
            removed = sorted(set(current) - set(found))
            if added:
                group.permissions.add(*(found[p] for p in added))
            if removed:
                group.permissions.remove(*(current[p] for p in removed))
            report[name] = {
                "added": added,
                "removed": removed,
                "missing": sorted(set(wanted) - set(found)),
            }
            if created and not record_new_groups:
                silent.add(name)
        if any((r["added"] or r["removed"]) and n not in silent for n, r in report.items()):
            record(
                "security.roles_synced",
                actor=by,
                changes={
                    n: {"added": r["added"], "removed": r["removed"]}
                    for n, r in report.items()
                    if r["added"] or r["removed"]
                },
            )
    return report
