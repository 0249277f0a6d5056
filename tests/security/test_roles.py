"""Roles as code: sync_roles makes the groups match the matrix, and each role reaches exactly
its matrix in the admin (permissions, direct URLs and actions), no more."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db.models import Model
from django.test import Client, RequestFactory

from audit.models import AuditEvent
from security.models import User
from security.roles import CUSTOM_PERMISSIONS, ROLE_NAMES, ROLES, matrix_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "roles.md"
ACTIONS = ("view", "add", "change", "delete")


def _group_perms(name: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=name).permissions.select_related("content_type")
    }


def _installed(perm: str) -> bool:
    app_label, codename = perm.split(".", 1)
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists()


@pytest.mark.django_db
def test_every_role_group_holds_exactly_its_matrix() -> None:
    for name, wanted in ROLES.items():
        assert _group_perms(name) == {p for p in wanted if _installed(p)}, name


@pytest.mark.django_db
def test_sync_roles_removes_extras_restores_missing_and_is_audited() -> None:
    clerk = Group.objects.get(name="Billing clerk")
    clerk.permissions.add(Permission.objects.get(codename="delete_invoice"))
    clerk.permissions.remove(Permission.objects.get(codename="add_invoice"))

    call_command("sync_roles", stdout=io.StringIO())

    assert _group_perms("Billing clerk") == {p for p in ROLES["Billing clerk"] if _installed(p)}
    event = AuditEvent.objects.filter(action="security.roles_synced").get()
    assert event.details == {
        "changes": {
            "Billing clerk": {
                "added": ["billing.add_invoice"],
                "removed": ["billing.delete_invoice"],
            }
        }
    }
    call_command("sync_roles", stdout=io.StringIO())
    assert AuditEvent.objects.filter(action="security.roles_synced").count() == 1


def test_docs_roles_md_holds_the_matrix() -> None:
    assert matrix_markdown() in DOCS.read_text(encoding="utf-8")


def test_no_role_may_reveal_a_card_number() -> None:
    assert not any("payments.reveal_card" in perms for perms in ROLES.values())


def _ceiling(model_admin: admin.ModelAdmin, superuser: User) -> dict[str, bool]:
    """What the admin allows anyone at all (a superuser) for the model as a whole."""
    request = RequestFactory().get("/admin/")
    request.user = superuser
    return _allowed(model_admin, request)


def _allowed(model_admin: admin.ModelAdmin, request) -> dict[str, bool]:
    return {
        "view": model_admin.has_view_permission(request),
        "add": model_admin.has_add_permission(request),
        "change": model_admin.has_change_permission(request),
        "delete": model_admin.has_delete_permission(request),
    }


def _matrix(role: str, model: type[Model]) -> dict[str, bool]:
    label = model._meta.app_label
    name = model._meta.model_name
    return {action: f"{label}.{action}_{name}" in ROLES[role] for action in ACTIONS}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLE_NAMES)
def test_each_role_reaches_exactly_its_matrix_in_the_admin(
    role: str, admin_client_for: Callable[[User], Client]
) -> None:
    superuser = User.objects.create_superuser(username="root-ceiling", password=None)
    person = User.objects.create_user(username=f"role-{role.lower().replace(' ', '-')}")
    person.is_staff = True
    person.save()
    person.groups.add(Group.objects.get(name=role))
    person = User.objects.get(pk=person.pk)
    client = admin_client_for(person)

    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        request = RequestFactory().get("/admin/")
        request.user = person
        ceiling = _ceiling(model_admin, superuser)
        expected = {a: ceiling[a] and _matrix(role, model)[a] for a in ACTIONS}
        if label == "payments.datakey":  # the key status page: its own permission
            expected["view"] = "payments.view_key_status" in ROLES[role]
        got = _allowed(model_admin, request)
        assert got == expected, f"{role} on {label}"

        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        sees = expected["view"] or expected["change"]
        assert (client.get(base).status_code == 200) == sees, f"{role} list {label}"
        assert (client.get(f"{base}add/").status_code == 200) == expected["add"], (
            f"{role} add {label}"
        )
        change = client.get(f"{base}0/change/").status_code
        assert change == (302 if sees else 403), f"{role} change {label}"
        delete = client.get(f"{base}0/delete/").status_code
        assert delete == (302 if expected["delete"] else 403), f"{role} delete {label}"

        for name, offered in model_admin.get_actions(request).items():
            func = offered[0] if offered else None
            needed: tuple[str, ...] = tuple(getattr(func, "allowed_permissions", None) or ())
            for permission in needed:
                assert expected.get(permission, False), f"{role} action {name} on {label}"


@pytest.mark.django_db
def test_custom_permissions_of_the_matrix_exist() -> None:
    for perm in CUSTOM_PERMISSIONS:
        assert _installed(perm), perm


@pytest.mark.django_db
def test_a_superuser_sign_in_is_audited_and_flagged() -> None:
    root = User.objects.create_superuser(username="breakglass", password="Glass4break9now")
    Client().post("/account/login/", {"username": "breakglass", "password": "Glass4break9now"})
    event = AuditEvent.objects.filter(action="security.superuser_used").get()
    assert event.actor_id == str(root.pk)
    assert event.details == {"flagged": True}


def test_docs_roles_md_holds_each_roles_purpose() -> None:
    from security.roles import purposes_markdown

    assert purposes_markdown() in DOCS.read_text(encoding="utf-8")
