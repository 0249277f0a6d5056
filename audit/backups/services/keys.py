"""The key backup: the key material a restore needs, to its own recipients."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from audit import SYSTEM
from audit.backups import gpg, manifest
from audit.backups.models import BackupRun
from audit.backups.services import runs
from audit.exceptions import BackupError


def _key_sources() -> list[tuple[str, Path | bytes]]:
    """What a restore needs besides the data: (name in the archive, file or bytes)."""
    sources: list[tuple[str, Path | bytes]] = []
    audit_key = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if audit_key.exists():
        sources.append(("audit_ed25519.pem", audit_key))
    trust = {"audit_trusted_public_keys": list(settings.AUDIT_TRUSTED_PUBLIC_KEYS)}
    sources.append(("trust.json", json.dumps(trust, indent=2).encode()))
    signing = Path(settings.DOCUMENTS_SIGNING_KEY_FILE)
    if signing.exists():
        sources.append(("invoice_signing.p12", signing))
    if settings.DOCUMENTS_KEY_PASSPHRASE:
        sources.append(("documents_passphrase", settings.DOCUMENTS_KEY_PASSPHRASE.encode()))
    if settings.VAULT_KEYRING_PROVIDER == "env":
        sources.append(("vault_keyring.json", settings.VAULT_KEYRING_JSON.encode()))
    elif Path(settings.VAULT_KEYRING_FILE).exists():
        sources.append(("vault_keyring.json", Path(settings.VAULT_KEYRING_FILE)))
    sources.append(("secret_key", str(settings.SECRET_KEY).encode()))
    if settings.PRIVACY_PSEUDONYM_KEY:
        sources.append(("privacy_pseudonym_key", settings.PRIVACY_PSEUDONYM_KEY.encode()))
    gnupg_home = Path(settings.DELIVERY_GNUPGHOME)
    if gnupg_home.is_dir():
        for path in sorted(gnupg_home.rglob("*")):
            # Sockets and lock files belong to a running agent, not to the keys.
            if path.is_file() and not path.name.startswith("S.") and ".lock" not in path.name:
                sources.append((f"gnupg/{path.relative_to(gnupg_home).as_posix()}", path))
    return sources


def export_keys(*, by: runs.Actor = SYSTEM, progress: runs.Progress = runs.quiet) -> BackupRun:
    """The key material (audit key and trust list, signing key and passphrase, vault
    keyring, PGP home, SECRET_KEY and the pseudonym key) in its own encrypted file, to
    BACKUP_KEYS_GPG_RECIPIENTS (never the data backup's recipients, never in the data
    backup's file); signed, audited."""
    now = timezone.now()
    run = runs.new_run(BackupRun.Kind.KEYS, now)
    try:
        recipients = gpg.check_recipients(
            settings.BACKUP_KEYS_GPG_RECIPIENTS, setting="BACKUP_KEYS_GPG_RECIPIENTS"
        )
        sources = _key_sources()
        with runs.partial_folder(Path(run.path)) as folder:
            with (
                gpg.encrypting_writer(folder / runs.KEYS_FILE, recipients) as writer,
                tarfile.open(fileobj=writer, mode="w|gz") as archive,  # type: ignore[call-overload]
            ):
                for name, source in sources:
                    content = source.read_bytes() if isinstance(source, Path) else source
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = len(content), 0o600, int(now.timestamp())
                    archive.addfile(info, io.BytesIO(content))
            digest = writer.digest()
            entries = [
                {
                    "name": runs.KEYS_FILE,
                    "content": "tar.gz of key files",
                    "plain_sha256": digest.sha256,
                    "plain_size": digest.size,
                }
            ]
            runs.seal_file_entries(folder, entries)
            body = manifest.write_signed(
                folder,
                {
                    "kind": BackupRun.Kind.KEYS,
                    "name": run.name,
                    "created_at": now.isoformat(),
                    "recipients": recipients,
                    "files": entries,
                    "contains": [name for name, _ in sources],
                },
            )
    except (BackupError, OSError) as exc:
        runs.fail_run(run, str(exc), by=by)
        raise BackupError(str(exc)) from exc
    runs.finish_run(run, body, recipients, by=by)
    progress(f"key backup {run.name}: {len(sources)} items in {run.path}")
    return run
