"""The ID-token signing key's rotation: real files and RSA keys in a temporary directory,
the command as an operator runs it, the key-age panel. The flow through the real OAuth
endpoints before and after a rotation: tests/api/test_oauth_flows.py."""

from __future__ import annotations

import datetime
import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit import SYSTEM
from payments.selectors import vault_key_ages
from security.exceptions import OidcKeyError
from security.oidc_key_files import (
    create_key_file,
    published_retired_keys,
    retire_key,
    retired_keys,
)
from security.services.oidc_keys import delete_expired_retired_keys, key_id, rotate_signing_key
from tests.factories import audit_events, make_user

pytestmark = pytest.mark.django_db
OVERLAP = datetime.timedelta(hours=24)
PANEL_ROW = "OpenID Connect ID-token signing key"


@pytest.fixture
def key_file(settings: Any, tmp_path: Path) -> Path:
    """A current key in a file of its own, its retired keys beside it (as the demo has)."""
    path = tmp_path / "keys" / "oidc_rsa.pem"
    create_key_file(path)
    _restart(settings, path)
    settings.OIDC_KEY_FILE = path
    settings.OIDC_RETIRED_KEYS_DIR = tmp_path / "keys" / "oidc-retired"
    settings.OIDC_RETIRED_KEY_HOURS = 24
    return path


def _restart(settings: Any, path: Path) -> None:
    """A worker's start: it signs with the key its file holds."""
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_RSA_PRIVATE_KEY": path.read_text(),
    }


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_rotation_keeps_the_old_key_retired_and_puts_a_new_one_in_place(
    key_file: Path, settings: Any
) -> None:
    old = key_file.read_text()
    rotation = rotate_signing_key(by=SYSTEM)
    new = key_file.read_text()
    assert new != old and "PRIVATE KEY" in new
    assert (rotation.key_id, rotation.retired_key_id) == (key_id(new), key_id(old))
    [(_moment, kept)] = retired_keys(settings.OIDC_RETIRED_KEYS_DIR)
    assert kept.read_text() == old
    assert _mode(key_file) == 0o600 and _mode(kept) == 0o600
    assert _mode(settings.OIDC_RETIRED_KEYS_DIR) == 0o700
    assert not list(key_file.parent.glob(".*.tmp"))  # nothing staged left behind


def test_a_rotation_is_audited_by_key_ids_never_the_keys(key_file: Path) -> None:
    old = key_file.read_text()
    rotation = rotate_signing_key(by=SYSTEM)
    [event] = audit_events("security.oidc_signing_key_rotated")
    assert event.details == {
        "key_id": rotation.key_id,
        "retired_key_id": key_id(old),
        "retired_keys_deleted": 0,
        "compromised": False,
    }
    assert "PRIVATE" not in str(event.details) and old[40:80] not in str(event.details)


def test_retired_keys_are_published_for_the_overlap_only_then_deleted(
    key_file: Path, settings: Any
) -> None:
    first = key_file.read_text()
    start = timezone.now()
    rotate_signing_key(by=SYSTEM, now=start)
    second = key_file.read_text()
    rotate_signing_key(by=SYSTEM, now=start + datetime.timedelta(hours=1))
    current = key_file.read_text()
    directory = settings.OIDC_RETIRED_KEYS_DIR

    def published(at: datetime.datetime) -> list[str]:
        return published_retired_keys(directory, overlap=OVERLAP, current=current, now=at)

    # Both retired keys are inside their overlap: newest first.
    assert published(start + datetime.timedelta(hours=2)) == [second, first]
    # The first one's overlap is over: no longer published, though still on disk...
    assert published(start + datetime.timedelta(hours=24)) == [second]
    assert len(retired_keys(directory)) == 2
    # ... until the deletion (the next rotation also deletes it).
    later = start + datetime.timedelta(hours=24, minutes=1)
    assert delete_expired_retired_keys(by=SYSTEM, now=later) == 1
    assert [path.read_text() for _m, path in retired_keys(directory)] == [second]
    assert audit_events("security.oidc_retired_keys_deleted")[0].details == {"count": 1}
    rotation = rotate_signing_key(by=SYSTEM, now=start + datetime.timedelta(hours=26))
    assert rotation.deleted == 1  # the second key's overlap is over too
    assert [path.read_text() for _m, path in retired_keys(directory)] == [current]


def test_a_rotation_stopped_between_its_two_writes_loses_no_key(
    key_file: Path, settings: Any
) -> None:
    """The old key is kept before the new one replaces it: stopped in between, the current
    key is also a retired copy, which is not published twice; the next rotation works."""
    current = key_file.read_text()
    retire_key(settings.OIDC_RETIRED_KEYS_DIR, current, at=timezone.now())
    assert (
        published_retired_keys(settings.OIDC_RETIRED_KEYS_DIR, overlap=OVERLAP, current=current)
        == []
    )
    rotation = rotate_signing_key(by=SYSTEM)
    assert rotation.retired_key_id == key_id(current)
    published = published_retired_keys(
        settings.OIDC_RETIRED_KEYS_DIR, overlap=OVERLAP, current=key_file.read_text()
    )
    assert published == [current]


def test_other_files_beside_the_retired_keys_are_left_alone(key_file: Path, settings: Any) -> None:
    directory = settings.OIDC_RETIRED_KEYS_DIR
    directory.mkdir(mode=0o700)
    for name in ("README", "retired-not-a-time.pem", "retired-20200101T000000000000Z.txt"):
        (directory / name).write_text("not a key")
    assert published_retired_keys(directory, overlap=OVERLAP, current="x") == []
    assert delete_expired_retired_keys(by=SYSTEM) == 0
    assert sorted(path.name for path in directory.iterdir()) == [
        "README",
        "retired-20200101T000000000000Z.txt",
        "retired-not-a-time.pem",
    ]


def test_a_key_given_inline_is_not_rotated_here(settings: Any) -> None:
    settings.OIDC_KEY_FILE = None
    settings.OIDC_RETIRED_KEYS_DIR = None
    with pytest.raises(OidcKeyError, match="OIDC_RSA_PRIVATE_KEY_FILE"):
        rotate_signing_key(by=SYSTEM)
    with pytest.raises(CommandError, match="OIDC_RSA_PRIVATE_KEY_FILE"):
        call_command("rotate_oidc_key", stdout=io.StringIO())
    assert audit_events("security.oidc_signing_key_rotated") == []


def test_the_command_reports_key_ids_and_never_prints_a_key(key_file: Path) -> None:
    old = key_file.read_text()
    out = io.StringIO()
    call_command("rotate_oidc_key", stdout=out)
    text = out.getvalue()
    new = key_file.read_text()
    assert key_id(new) in text and key_id(old) in text
    assert "restart" in text
    assert "PRIVATE" not in text and new[40:80] not in text and old[40:80] not in text


def test_the_command_names_its_operator_in_the_audit_log(key_file: Path) -> None:
    olle = make_user("ops-olle")
    call_command("rotate_oidc_key", "--actor", "ops-olle", stdout=io.StringIO())
    [event] = audit_events("security.oidc_signing_key_rotated")
    assert event.actor_id == str(olle.pk)
    with pytest.raises(CommandError, match="no active user named 'nobody'"):
        call_command("rotate_oidc_key", "--actor", "nobody", stdout=io.StringIO())


def test_delete_expired_only_makes_no_new_key(key_file: Path) -> None:
    before = key_file.read_text()
    out = io.StringIO()
    call_command("rotate_oidc_key", "--delete-expired-only", stdout=out)
    assert key_file.read_text() == before
    assert "Deleted 0 retired" in out.getvalue()


def test_the_key_age_panel_shows_the_id_token_key_against_its_cryptoperiod(
    key_file: Path, settings: Any
) -> None:
    settings.OIDC_KEY_CRYPTOPERIOD_DAYS = 365
    row = {age.name: age for age in vault_key_ages()}[PANEL_ROW]
    assert row.created_at is not None and not row.overdue
    assert row.cryptoperiod == datetime.timedelta(days=365)
    made = timezone.now() - datetime.timedelta(days=400)
    os.utime(key_file, (made.timestamp(), made.timestamp()))
    row = {age.name: age for age in vault_key_ages()}[PANEL_ROW]
    assert row.overdue and row.age is not None and row.age.days == 400
    rotate_signing_key(by=SYSTEM)
    # Until the workers restart, the old key signs: its age is no longer known.
    row = {age.name: age for age in vault_key_ages()}[PANEL_ROW]
    assert (row.created_at, row.overdue) == (None, False)
    _restart(settings, key_file)
    row = {age.name: age for age in vault_key_ages()}[PANEL_ROW]
    assert row.created_at is not None and not row.overdue and row.age is not None
    assert row.age < datetime.timedelta(minutes=5)


def test_the_key_age_panel_shows_no_age_for_a_key_given_inline(settings: Any) -> None:
    settings.OIDC_KEY_FILE = None
    row = {age.name: age for age in vault_key_ages()}[PANEL_ROW]
    assert (row.created_at, row.age, row.overdue) == (None, None, False)


def test_a_compromised_key_is_not_kept_and_no_retired_key_survives(
    key_file: Path, settings: Any
) -> None:
    """A leaked key must not stay published for the overlap: whoever holds it could sign
    ID tokens that verify."""
    rotate_signing_key(by=SYSTEM)  # an ordinary rotation first: one retired key
    leaked = key_file.read_text()
    out = io.StringIO()
    call_command("rotate_oidc_key", "--compromised", stdout=out)
    current = key_file.read_text()
    assert current != leaked
    assert retired_keys(settings.OIDC_RETIRED_KEYS_DIR) == []
    directory = settings.OIDC_RETIRED_KEYS_DIR
    assert published_retired_keys(directory, overlap=OVERLAP, current=current) == []
    event = audit_events("security.oidc_signing_key_rotated")[-1]
    assert event.details["compromised"] is True
    assert event.details["retired_key_id"] == key_id(leaked)
    assert event.details["retired_keys_deleted"] == 1
    assert "deleted, not published" in out.getvalue()
