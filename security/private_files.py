"""Key files written whole or not at all, readable by their owner only.

Without Django (config/settings.py reads keys through modules that use it before the
apps load): the vault's file keyring (``security.keyring``) and the OpenID Connect
ID-token keys (``security.oidc_key_files``) write their files here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_private_file(path: Path, text: str, *, replace: bool = True) -> bool:
    """Write ``text`` to ``path`` (mode 0600, its directory made 0700): to a temporary file
    beside it, flushed to disk, then renamed over ``path``, so that a reader and a crash
    see the old file or the new one, never half of one.

    ``replace=False``: put it there only if no file is (a hard link, which fails when one
    exists); False when one was, which is kept: of two processes making a first key at
    the same moment, the loser reads the winner's."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if not replace:
            try:
                os.link(staged, path)
            except FileExistsError:
                return False
            return True
        os.replace(staged, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
