"""Issue 17: no admin page, for any role, shows a secret of another person or key material.

Walks every model registered in the admin and every page of it (list, add, change,
history, delete confirmation and each model's own extra pages, for the model's rows) as
each staff role and as a break-glass superuser, and asserts that no answer contains a
password hash (whole or in part), a TOTP key (hex, base32 or base64), a backup code's
hash, a wrapped data or card-entry key, the keyring's key material or a card number.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db.models import Model
from django.test import Client
from django.urls import URLResolver
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.models import Customer
from payments.models import DataKey, EntryKey
from payments.vault import services as key_services
from payments.vault.services import tokenize
from security import mfa
from security.models import BackupCode, BackupCodeDevice, User
from security.roles import STAFF_ROLES
from tests.factories import make_user
from tests.mfa_helpers import give_totp_device
from tests.payments.conftest import VISA, card, vault_keyring  # noqa: F401

pytestmark = pytest.mark.django_db

CONVERTER = re.compile(r"<(?:\w+:)?\w+>")
ROWS_PER_MODEL = 3


def _encodings(raw: bytes) -> list[str]:
    return [raw.hex(), base64.b64encode(raw).decode(), base64.b32encode(raw).decode().rstrip("=")]


def _secrets(keyring_file: Path) -> list[str]:
    found: list[str] = [VISA]
    for user in User.objects.all():
        if user.password and user.has_usable_password():
            found.append(user.password)
            found += [part for part in user.password.split("$")[1:] if len(part) >= 8]
    for device in TOTPDevice.objects.all():
        found += [device.key, *_encodings(device.bin_key)]
    found += list(BackupCode.objects.values_list("code_hash", flat=True))
    for key in DataKey.objects.exclude(wrapped_key=None):
        found += _encodings(bytes(key.wrapped_key or b""))
    for entry in EntryKey.objects.exclude(wrapped_private_key=None):
        found += _encodings(bytes(entry.wrapped_private_key or b""))
    material = json.loads(keyring_file.read_text(encoding="utf-8"))

    def strings(value: object) -> Iterator[str]:
        if isinstance(value, str) and len(value) >= 16:
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    found += list(strings(material))
    return [s for s in found if s]


def _admin_paths(model: type[Model], model_admin: admin.ModelAdmin) -> Iterator[str]:
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    rows = list(model_admin.get_queryset_for_walk())  # type: ignore[attr-defined]
    for entry in model_admin.get_urls():
        if isinstance(entry, URLResolver):
            continue
        route = str(entry.pattern)
        if route.startswith("^") or "<" not in route:
            yield base + route.lstrip("^").rstrip("$")
            continue
        for row in rows:
            yield base + CONVERTER.sub(str(row.pk), route)


def _rows(model: type[Model]) -> Callable[[], list[Model]]:
    def rows() -> list[Model]:
        queryset = model._default_manager.order_by("pk")
        if model in (User, TOTPDevice):
            return list(queryset)
        return list(queryset[:ROWS_PER_MODEL])

    return rows


@pytest.fixture
def everyone(alice_company: Customer, alice: User, bob: User) -> list[User]:
    """A staff member per role and a superuser, each with a password, a TOTP device and
    backup codes; customers with a factor; a saved card and the vault's keys."""
    people = []
    for role in STAFF_ROLES:
        person = make_user(f"walker-{role.lower().replace(' ', '-')}", is_staff=True)
        person.groups.add(Group.objects.get(name=role))
        people.append(User.objects.get(pk=person.pk))
    root = User.objects.create_superuser(
        username="walker-root", email="root@example.test", password="Break9glass4now"
    )
    people.append(root)
    for person in [*people, alice, bob]:
        give_totp_device(person)
        backup = BackupCodeDevice.objects.create(user=person, name="Backup", confirmed=True)
        BackupCode.objects.create(device=backup, code_hash=mfa.hash_backup_code("abcde-fghij"))
    key_services.current_entry_key()
    tokenize(card(), customer=alice_company, by=alice)
    return people


@pytest.mark.parametrize("index", range(len(STAFF_ROLES) + 1))
def test_no_admin_page_shows_a_secret_to_any_role(
    index: int,
    everyone: list[User],
    admin_client_for: Callable[[User], Client],
    vault_keyring: Path,  # noqa: F811
) -> None:
    person = everyone[index]
    client = admin_client_for(person)
    secrets = _secrets(vault_keyring)
    assert len(secrets) > 20  # the walk looks for something real
    visited = 0
    pages = ["/admin/"] + [
        f"/admin/{app}/" for app in {m._meta.app_label for m in admin.site._registry}
    ]
    for model, model_admin in admin.site._registry.items():
        model_admin.get_queryset_for_walk = _rows(model)  # type: ignore[attr-defined]
        pages += list(_admin_paths(model, model_admin))
    for path in pages:
        response = client.get(path)
        if response.status_code >= 500:
            pytest.fail(f"{person} {path}: {response.status_code}")
        body = response.content.decode("utf-8", errors="replace")
        leaked = [s[:12] + "…" for s in secrets if s in body]
        assert not leaked, f"{person} sees {leaked} at {path}"
        visited += response.status_code == 200
    assert visited >= 8, f"{person} reached only {visited} pages"
