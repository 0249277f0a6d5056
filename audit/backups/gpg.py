"""GnuPG for backups: the gpg binary in ``BACKUP_GNUPGHOME``, fed through pipes.

python-gnupg (used for email) copies its input 1 KiB at a time in a thread; a backup of
gigabytes streams from pg_dump through gpg in 1 MiB chunks instead, so the two programs
run side by side (decisions.md 54). The passphrase (restore only) goes to gpg on a
separate pipe (``--passphrase-fd``), never on its command line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings

from audit.exceptions import BackupError

CHUNK = 1024 * 1024


def home() -> Path:
    path = Path(settings.BACKUP_GNUPGHOME)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def _gpg() -> str:
    found = shutil.which("gpg")
    if not found:
        raise BackupError("gpg: GnuPG 2 is not installed; backups are never written unencrypted")
    return found


def _base_args() -> list[str]:
    return [_gpg(), "--homedir", str(home()), "--batch", "--no-tty", "--quiet"]


def public_keys() -> set[str]:
    """Fingerprints of the public keys in the backup GnuPG home that can encrypt."""
    result = subprocess.run(  # noqa: S603 - fixed program, our own arguments
        [*_base_args(), "--with-colons", "--list-keys"],
        capture_output=True,
        check=False,
    )
    fingerprints: set[str] = set()
    primary_usable = False
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            primary_usable = fields[1] not in {"r", "e", "d", "i"}
        if fields[0] == "fpr" and primary_usable:
            fingerprints.add(fields[9].upper())
    return fingerprints


def secret_keys() -> set[str]:
    """Fingerprints of the secret keys in the backup GnuPG home (primary and subkeys)."""
    result = subprocess.run(  # noqa: S603
        [*_base_args(), "--with-colons", "--list-secret-keys"],
        capture_output=True,
        check=False,
    )
    return {
        line.split(":")[9].upper()
        for line in result.stdout.decode("utf-8", "replace").splitlines()
        if line.startswith("fpr:")
    }


def check_recipients(recipients: list[str], *, setting: str) -> list[str]:
    """The recipients, each with a usable public key here; refused by name otherwise."""
    if not recipients:
        raise BackupError(
            f"{setting}: no recipient key configured; a backup is never written in plaintext"
        )
    known = public_keys()
    missing = [fpr for fpr in recipients if fpr not in known]
    if missing:
        raise BackupError(
            f"{setting}: no usable public key for {', '.join(missing)} in BACKUP_GNUPGHOME"
            f" ({home()}); import it with `gpg --homedir {home()} --import KEY.asc`"
        )
    return list(recipients)


@dataclass
class StreamDigest:
    """SHA-256 and size of what passed through a pump."""

    sha256: str = ""
    size: int = 0


class HashingWriter:
    """A write-only file object that hashes what it passes on (for tarfile's stream mode)."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def digest(self) -> StreamDigest:
        return StreamDigest(self.hash.hexdigest(), self.size)


@contextlib.contextmanager
def encrypting_writer(output: Path, recipients: list[str]) -> Iterator[HashingWriter]:
    """A writer whose bytes reach ``output`` only encrypted to ``recipients`` (binary
    OpenPGP, AES-256, no second compression: what we feed is compressed already)."""
    args = [
        *_base_args(),
        "--trust-model",
        "always",  # the recipients are pinned by fingerprint in settings
        "--compress-algo",
        "none",
        "--cipher-algo",
        "AES256",
        "--output",
        str(output),
        "--encrypt",
    ]
    for fpr in recipients:
        args += ["--recipient", fpr]
    process = subprocess.Popen(  # noqa: S603
        args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stdin is not None
    writer = HashingWriter(process.stdin)
    try:
        yield writer
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
    assert process.stderr is not None
    err = process.stderr.read()
    if process.wait() != 0:
        raise BackupError(f"gpg could not encrypt: {_last_line(err)}")


def encrypt_stream(source: IO[bytes], output: Path, recipients: list[str]) -> StreamDigest:
    """Copy ``source`` (e.g. pg_dump's stdout) into ``output``, encrypted; its plaintext digest."""
    with encrypting_writer(output, recipients) as writer:
        while chunk := source.read(CHUNK):
            writer.write(chunk)
    return writer.digest()


def decrypt_to(
    encrypted: Path, sink: Callable[[bytes], object], *, passphrase: str = ""
) -> StreamDigest:
    """Decrypt ``encrypted`` into ``sink`` chunk by chunk; the plaintext's digest."""
    args = [*_base_args(), "--pinentry-mode", "loopback"]
    read_fd = None
    if passphrase:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, passphrase.encode("utf-8"))
        os.close(write_fd)
        args += ["--passphrase-fd", str(read_fd)]
    args += ["--decrypt", str(encrypted)]
    process = subprocess.Popen(  # noqa: S603
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(read_fd,) if read_fd is not None else (),
    )
    if read_fd is not None:
        os.close(read_fd)
    assert process.stdout is not None
    digest = hashlib.sha256()
    size = 0
    try:
        while chunk := process.stdout.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            sink(chunk)
    except BaseException:
        process.kill()
        process.wait()
        raise
    _, err = process.communicate()
    if process.returncode != 0:
        raise BackupError(f"gpg could not decrypt {encrypted.name}: {_last_line(err)}")
    return StreamDigest(digest.hexdigest(), size)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _last_line(err: bytes) -> str:
    lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def generate_key(home: Path, *, name: str, email: str, passphrase: str = "") -> str:
    """A new Ed25519 (sign) + Curve25519 (encrypt) key pair in the GnuPG home ``home``; its
    fingerprint. For the bench and the tests: production keys are made where the secret
    key is kept (docs/operations/backup-restore.md), never on the server."""
    import gnupg

    gpg = gnupg.GPG(gnupghome=str(home))
    spec = gpg.gen_key_input(
        key_type="EDDSA",
        key_curve="ed25519",
        key_usage="sign",
        subkey_type="ECDH",
        subkey_curve="cv25519",
        subkey_usage="encrypt",
        name_real=name,
        name_email=email,
        expire_date="1y",
        **({"passphrase": passphrase} if passphrase else {"no_protection": True}),
    )
    key = gpg.gen_key(spec)
    if not key.fingerprint:
        raise BackupError(f"gpg could not create a key in {home}")
    return str(key.fingerprint)
