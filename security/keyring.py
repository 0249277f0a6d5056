"""Key-encryption keys (KEKs) and the fingerprint key, kept outside the database.

The vault stores its data keys (DEKs) only wrapped by a KEK, and fingerprints
card numbers with an HMAC key; neither key ever enters the database. A keyring
is the small interface a KMS or HSM adapter implements to take their place:

* ``current_version()`` / ``versions()``: the KEK versions it knows;
* ``wrap(key, context=...)`` / ``unwrap(wrapped, version=..., context=...)``:
  AES-256-GCM under KEK ``version``; ``context`` is bound as associated data, so
  a wrapped key copied to another record does not unwrap;
* ``add_version()``: make a new KEK version current (``KeyringReadOnly`` when the
  keys are managed elsewhere, e.g. in the environment or a KMS console);
* ``retire_versions(keep=...)``: forget versions no record needs any more;
* ``fingerprint(data)``: HMAC-SHA256 under the fingerprint key.

Two providers ship: ``FileKeyring`` (a JSON file, mode 0600, created on first
use in development, never over keys already in use) and ``EnvKeyring`` (the
same JSON in an environment variable, read-only). ``get_keyring()`` picks one from the settings
``VAULT_KEYRING_PROVIDER``, ``VAULT_KEYRING_FILE`` and ``VAULT_KEYRING_JSON``.

Security is the ground floor: this module imports no domain app.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from security.private_files import write_private_file

KEY_BYTES = 32
NONCE_BYTES = 12
_WRAP_LABEL = b"tillit.keyring.wrap.v1|"


class KeyringError(Exception):
    """Base of the keyring's errors; messages never include key material."""


class UnknownKeyVersion(KeyringError):
    """The wrapped key names a KEK version this keyring does not hold."""


class UnwrapFailed(KeyringError):
    """The wrapped key was altered, or belongs to another record or KEK."""


class KeyringReadOnly(KeyringError):
    """The keys are managed outside the platform (environment, KMS console)."""


class KeyringUnavailable(KeyringError, ImproperlyConfigured):
    """The keyring cannot be loaded: its file is missing (and may not be created), cannot
    be read, or does not hold a keyring; or the provider is misconfigured. The message is
    for operators (it names the file or variable), never for customers."""


@dataclass(frozen=True)
class Wrapped:
    """A key wrapped by KEK ``version``: ``blob`` is nonce || ciphertext || tag."""

    version: int
    blob: bytes


class Keyring(ABC):
    """What the vault needs from a key store; a KMS/HSM adapter implements this."""

    name: str = "keyring"

    @abstractmethod
    def current_version(self) -> int:
        """The KEK version new wraps use."""

    @abstractmethod
    def versions(self) -> list[int]:
        """Every KEK version this keyring can unwrap with, ascending."""

    @abstractmethod
    def wrap(self, key: bytes, *, context: bytes) -> Wrapped:
        """Encrypt ``key`` under the current KEK, binding ``context``."""

    @abstractmethod
    def unwrap(self, blob: bytes, *, version: int, context: bytes) -> bytes:
        """Decrypt a wrapped key; raises UnknownKeyVersion or UnwrapFailed."""

    @abstractmethod
    def fingerprint(self, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under the fingerprint key (never the KEK)."""

    def add_version(self) -> int:
        """Make a new KEK version current and return it."""
        raise KeyringReadOnly(f"{self.name}: KEK versions are managed outside the platform")

    def retire_versions(self, *, keep: set[int]) -> list[int]:
        """Forget every version not in ``keep`` (nor the current one); return them."""
        raise KeyringReadOnly(f"{self.name}: KEK versions are managed outside the platform")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise KeyringUnavailable(f"keyring: {what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringUnavailable(f"keyring: {what} must be {KEY_BYTES} bytes")
    return raw


@dataclass
class _Material:
    """Parsed keyring document: KEK versions and the fingerprint key."""

    keks: dict[int, bytes] = field(default_factory=dict)
    current: int = 0
    fingerprint_key: bytes = b""

    @classmethod
    def parse(cls, text: str) -> _Material:
        try:
            doc = json.loads(text)
            keks = {int(v): _unb64(k, f"kek version {v}") for v, k in doc["kek"].items()}
            current = int(doc["current"])
            fingerprint_key = _unb64(doc["fingerprint"], "fingerprint key")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, ImproperlyConfigured):
                raise
            raise KeyringUnavailable(
                "keyring: expected JSON {'current': N, 'kek': {'N': base64}, 'fingerprint': base64}"
            ) from None
        if current not in keks:
            raise KeyringUnavailable(f"keyring: current version {current} has no key")
        return cls(keks=keks, current=current, fingerprint_key=fingerprint_key)

    @classmethod
    def generate(cls) -> _Material:
        return cls(
            keks={1: secrets.token_bytes(KEY_BYTES)},
            current=1,
            fingerprint_key=secrets.token_bytes(KEY_BYTES),
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "current": self.current,
                "kek": {str(v): _b64(k) for v, k in sorted(self.keks.items())},
                "fingerprint": _b64(self.fingerprint_key),
            },
            indent=1,
        )


class _MaterialKeyring(Keyring):
    """Shared AES-GCM wrapping over in-memory key material."""

    def __init__(self, material: _Material) -> None:
        self._material = material

    def current_version(self) -> int:
        return self._material.current

    def versions(self) -> list[int]:
        return sorted(self._material.keks)

    @staticmethod
    def _ad(version: int, context: bytes) -> bytes:
        return _WRAP_LABEL + version.to_bytes(4, "big") + b"|" + context

    def wrap(self, key: bytes, *, context: bytes) -> Wrapped:
        version = self._material.current
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self._material.keks[version]).encrypt(
            nonce, key, self._ad(version, context)
        )
        return Wrapped(version=version, blob=nonce + sealed)

    def unwrap(self, blob: bytes, *, version: int, context: bytes) -> bytes:
        kek = self._material.keks.get(version)
        if kek is None:
            raise UnknownKeyVersion(f"{self.name}: no KEK version {version}")
        if len(blob) < NONCE_BYTES + 16:
            raise UnwrapFailed(f"{self.name}: wrapped key is truncated")
        try:
            return AESGCM(kek).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._ad(version, context)
            )
        except InvalidTag:
            raise UnwrapFailed(
                f"{self.name}: wrapped key does not verify under KEK version {version}"
            ) from None

    def fingerprint(self, data: bytes) -> bytes:
        return hmac.new(self._material.fingerprint_key, data, hashlib.sha256).digest()


CreationGuard = Callable[[], str | None]
"""Asked before a missing keyring file is created: why not (keys already in use), or None."""


class FileKeyring(_MaterialKeyring):
    """Keys in a JSON file outside the database (mode 0600; created if ``create``).

    ``refuse_creation``: asked before a missing file is created; a reason it gives
    (e.g. the database already holds keys wrapped under the lost file's KEKs) refuses
    the creation: new keys would make every stored card unreadable for good.
    """

    name = "file keyring"

    def __init__(
        self, path: Path, *, create: bool, refuse_creation: CreationGuard | None = None
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise KeyringUnavailable(
                    f"VAULT_KEYRING_FILE {self.path} does not exist; provision it "
                    "(docs/vault.md) or start once with VAULT_KEYRING_CREATE=true"
                )
            reason = refuse_creation() if refuse_creation is not None else None
            if reason:
                raise KeyringUnavailable(
                    f"VAULT_KEYRING_FILE {self.path} is missing, and {reason}: no new keys "
                    "are created over them (every stored card would become unreadable for "
                    "good). Restore the file from its backup (docs/vault.md, Recovery)."
                )
            self._write(_Material.generate(), first=True)
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyringUnavailable(
                f"VAULT_KEYRING_FILE {self.path} cannot be read: {exc.strerror or exc}"
            ) from None
        try:
            material = _Material.parse(text)
        except KeyringUnavailable as exc:
            raise KeyringUnavailable(f"VAULT_KEYRING_FILE {self.path}: {exc}") from None
        super().__init__(material)

    def _write(self, material: _Material, *, first: bool = False) -> None:
        """Replace the file whole (``security.private_files``) so a crash keeps one copy.

        ``first``: create the file only if no other process has; the loser of
        that race reads the winner's keys instead of replacing them (a replaced
        KEK would orphan every DEK the winner already wrapped).
        """
        write_private_file(self.path, material.dump(), replace=not first)

    def add_version(self) -> int:
        version = max(self._material.keks) + 1
        material = _Material(
            keks={**self._material.keks, version: secrets.token_bytes(KEY_BYTES)},
            current=version,
            fingerprint_key=self._material.fingerprint_key,
        )
        self._write(material)
        self._material = material
        return version

    def retire_versions(self, *, keep: set[int]) -> list[int]:
        keep = keep | {self._material.current}
        retired = sorted(v for v in self._material.keks if v not in keep)
        if retired:
            material = _Material(
                keks={v: k for v, k in self._material.keks.items() if v in keep},
                current=self._material.current,
                fingerprint_key=self._material.fingerprint_key,
            )
            self._write(material)
            self._material = material
        return retired


class EnvKeyring(_MaterialKeyring):
    """Keys from the environment (``VAULT_KEYRING_JSON``); versions are added by operators."""

    name = "environment keyring"

    def __init__(self, text: str) -> None:
        if not text:
            raise KeyringUnavailable(
                "VAULT_KEYRING_JSON (or VAULT_KEYRING_JSON_FILE) is required when "
                "VAULT_KEYRING_PROVIDER=env"
            )
        super().__init__(_Material.parse(text))


_lock = threading.Lock()
_cache: dict[tuple[Any, ...], Keyring] = {}
_creation_guards: list[CreationGuard] = []


def refuse_keyring_creation_when(guard: CreationGuard) -> None:
    """Have ``get_keyring`` ask ``guard`` before it creates a missing keyring file (the
    vault registers one: it knows whether keys wrapped under a KEK are in use)."""
    if guard not in _creation_guards:
        _creation_guards.append(guard)


def _refuse_creation() -> str | None:
    for guard in _creation_guards:
        reason = guard()
        if reason:
            return reason
    return None


def _cache_key() -> tuple[Any, ...]:
    provider = settings.VAULT_KEYRING_PROVIDER
    if provider == "file":
        # os.stat on the setting's text: this runs for every fingerprint and unwrap.
        path = os.fspath(settings.VAULT_KEYRING_FILE)
        try:
            stat = os.stat(path)
            stamp: tuple[int, int] = (stat.st_mtime_ns, stat.st_ino)
        except OSError:
            stamp = (0, 0)
        return (provider, path, stamp)
    if provider == "env":
        return (provider, hashlib.sha256(settings.VAULT_KEYRING_JSON.encode()).hexdigest())
    return (provider,)


def get_keyring() -> Keyring:
    """The configured keyring (cached; a file keyring reloads when its file changes)."""
    with _lock:
        key = _cache_key()
        keyring = _cache.get(key)
        if keyring is None:
            provider = settings.VAULT_KEYRING_PROVIDER
            if provider == "file":
                keyring = FileKeyring(
                    Path(settings.VAULT_KEYRING_FILE),
                    create=settings.VAULT_KEYRING_CREATE,
                    refuse_creation=_refuse_creation,
                )
            elif provider == "env":
                keyring = EnvKeyring(settings.VAULT_KEYRING_JSON)
            else:
                keyring = import_string(provider)()
                if not isinstance(keyring, Keyring):
                    raise KeyringUnavailable(
                        f"VAULT_KEYRING_PROVIDER {provider!r} is not a security.keyring.Keyring"
                    )
            _cache.clear()
            key = _cache_key()  # a file created just now has a new stamp
            _cache[key] = keyring
        return keyring


def forget_cached_keyrings() -> None:
    """Drop cached keyrings (tests that switch keyrings, after an operator edit)."""
    with _lock:
        _cache.clear()
