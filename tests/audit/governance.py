"""Fixtures of the governance tests (incidents, reviews): the people of each staff role,
a request with a fresh second factor, and the keys outside the database (vault keyring,
invoice signing certificate) in temporary places."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from billing.documents import keys as document_keys
from security.keyring import forget_cached_keyrings
from security.models import User
from security.roles import STAFF_ROLES
from tests.factories import make_user
from tests.mfa_helpers import stepped_up_request

PASSPHRASE = "correct horse review staple"


@pytest.fixture(autouse=True)
def governance_keys(
    settings: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A keyring of this test's own, and the session's invoice signing certificate."""
    settings.VAULT_KEYRING_PROVIDER = "file"
    settings.VAULT_KEYRING_FILE = tmp_path / "keys" / "vault_keyring.json"
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048
    signing = tmp_path_factory.getbasetemp() / "governance_signing.p12"
    settings.DOCUMENTS_SIGNING_KEY_FILE = signing
    settings.DOCUMENTS_KEY_PASSPHRASE = PASSPHRASE
    settings.DOCUMENTS_CREATE_KEYS = False
    if not signing.exists():
        document_keys.create_key_file(
            common_name="Tillit Demo AB invoices", organisation="Tillit Demo AB"
        )
    forget_cached_keyrings()
    yield
    forget_cached_keyrings()


def staff_member(username: str, role: str) -> User:
    user = make_user(username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def officer(db: None) -> User:
    """Sofia, a security officer."""
    return staff_member("sofia", "Security officer")


@pytest.fixture
def auditor(db: None) -> User:
    """Arne, the auditor: reads everything, changes nothing."""
    return staff_member("arne", "Auditor")


@pytest.fixture
def other_roles(db: None) -> list[User]:
    """One staff member of every role but Security officer."""
    return [
        staff_member(f"role{n}", role)
        for n, role in enumerate(STAFF_ROLES)
        if role != "Security officer"
    ]


@pytest.fixture
def stepped_up() -> Callable[[User], Any]:
    """``stepped_up(user)``: a request of a signed-in session whose second factor was
    verified just now (what an admin view hands a service)."""

    return stepped_up_request


def tamper_with_event(seq: int, *, actor_label: str = "nobody") -> None:
    """Edit one stored audit event as a database superuser could (the append-only
    trigger switched off for this statement): its hash no longer matches its content."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE audit_auditevent SET actor_label = %s WHERE seq = %s", [actor_label, seq]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
