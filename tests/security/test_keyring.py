"""The keyring: KEKs and the fingerprint key outside the database, behind a small interface."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from security.keyring import (
    EnvKeyring,
    FileKeyring,
    KeyringReadOnly,
    KeyringUnavailable,
    UnknownKeyVersion,
    UnwrapFailed,
    forget_cached_keyrings,
    get_keyring,
)


def test_a_new_file_keyring_is_private_and_wraps_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ring.json"
    ring = FileKeyring(path, create=True)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    wrapped = ring.wrap(b"k" * 32, context=b"dek|1")
    assert wrapped.version == 1 and b"k" * 32 not in wrapped.blob
    assert ring.unwrap(wrapped.blob, version=1, context=b"dek|1") == b"k" * 32


def test_unwrap_refuses_another_context_a_tampered_blob_and_an_unknown_version(
    tmp_path: Path,
) -> None:
    ring = FileKeyring(tmp_path / "ring.json", create=True)
    wrapped = ring.wrap(b"k" * 32, context=b"dek|1")
    with pytest.raises(UnwrapFailed):
        ring.unwrap(wrapped.blob, version=1, context=b"dek|2")
    with pytest.raises(UnwrapFailed):
        ring.unwrap(wrapped.blob[:-1] + bytes([wrapped.blob[-1] ^ 1]), version=1, context=b"dek|1")
    with pytest.raises(UnknownKeyVersion, match="version 7"):
        ring.unwrap(wrapped.blob, version=7, context=b"dek|1")


def test_a_new_version_becomes_current_and_old_versions_still_unwrap(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    ring = FileKeyring(path, create=True)
    old = ring.wrap(b"a" * 32, context=b"c")

    assert ring.add_version() == 2
    reloaded = FileKeyring(path, create=False)
    assert reloaded.current_version() == 2 and reloaded.versions() == [1, 2]
    assert reloaded.unwrap(old.blob, version=1, context=b"c") == b"a" * 32
    assert reloaded.retire_versions(keep=set()) == [1]
    assert FileKeyring(path, create=False).versions() == [2]


def test_the_fingerprint_key_is_stable_across_kek_versions(tmp_path: Path) -> None:
    ring = FileKeyring(tmp_path / "ring.json", create=True)
    before = ring.fingerprint(b"4111111111111111")
    ring.add_version()
    assert ring.fingerprint(b"4111111111111111") == before
    assert FileKeyring(tmp_path / "other.json", create=True).fingerprint(b"4111111111111111") != (
        before
    )


def test_a_missing_file_is_refused_when_creation_is_off(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="VAULT_KEYRING_FILE"):
        FileKeyring(tmp_path / "absent.json", create=False)


@pytest.mark.parametrize("text", ["", "{}", '{"current": 2, "kek": {"1": "AAAA"}}', "not json"])
def test_a_malformed_keyring_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"keyring|VAULT_KEYRING_JSON") as caught:
        EnvKeyring(text)
    assert "AAAA" not in str(caught.value)


def test_the_environment_keyring_is_read_only(tmp_path: Path) -> None:
    ring_file = FileKeyring(tmp_path / "ring.json", create=True)
    text = (tmp_path / "ring.json").read_text()
    ring = EnvKeyring(text)
    wrapped = ring_file.wrap(b"z" * 32, context=b"c")
    assert ring.unwrap(wrapped.blob, version=1, context=b"c") == b"z" * 32
    with pytest.raises(KeyringReadOnly):
        ring.add_version()
    assert json.loads(text)["current"] == 1


def test_get_keyring_follows_the_settings(settings: Any, tmp_path: Path, db: None) -> None:
    # (db: before it creates a missing file, get_keyring asks the vault whether the
    # database holds keys wrapped under the lost one's KEKs.)
    settings.VAULT_KEYRING_PROVIDER = "file"
    settings.VAULT_KEYRING_FILE = tmp_path / "ring.json"
    settings.VAULT_KEYRING_CREATE = True
    forget_cached_keyrings()
    ring = get_keyring()
    assert isinstance(ring, FileKeyring) and get_keyring() is ring
    settings.VAULT_KEYRING_PROVIDER = "env"
    settings.VAULT_KEYRING_JSON = (tmp_path / "ring.json").read_text()
    assert isinstance(get_keyring(), EnvKeyring)
    settings.VAULT_KEYRING_PROVIDER = "builtins.dict"
    with pytest.raises(ImproperlyConfigured, match=r"not a security\.keyring\.Keyring"):
        get_keyring()
    forget_cached_keyrings()


def test_a_keyring_created_by_a_racing_process_is_kept_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ring.json"
    winner = FileKeyring(path, create=True)
    wrapped = winner.wrap(b"d" * 32, context=b"dek|1")
    original = path.read_bytes()
    # The loser checked "does not exist" before the winner wrote: make that so.
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: False if self == path else real_exists(self))

    loser = FileKeyring(path, create=True)

    monkeypatch.undo()
    assert path.read_bytes() == original
    assert loser.unwrap(wrapped.blob, version=1, context=b"dek|1") == b"d" * 32
    assert [p.name for p in tmp_path.iterdir()] == ["ring.json"]


def test_an_unreadable_or_malformed_file_is_refused_naming_it_and_not_replaced(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ring.json"
    path.mkdir()  # (root reads a file of mode 000: a directory cannot be read as one)
    with pytest.raises(KeyringUnavailable, match=str(path)):
        FileKeyring(path, create=True)
    path.rmdir()
    path.write_text('{"current": 1, "kek": {"1": "c2hvcnQ="}}', encoding="utf-8")
    with pytest.raises(KeyringUnavailable, match=str(path)) as caught:
        FileKeyring(path, create=True)
    assert "c2hvcnQ=" not in str(caught.value)
    assert path.read_text(encoding="utf-8").startswith('{"current": 1')


def test_a_guard_refuses_to_create_a_missing_file_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    with pytest.raises(KeyringUnavailable) as caught:
        FileKeyring(path, create=True, refuse_creation=lambda: "the database holds 3 keys")
    assert str(path) in str(caught.value) and "the database holds 3 keys" in str(caught.value)
    assert not path.exists()
    assert FileKeyring(path, create=True, refuse_creation=lambda: None).versions() == [1]
