"""A job for the scale-out test: it notes which job ran, in which cluster (process group)."""

from __future__ import annotations

import os
import time


def note_run(number: int, path: str) -> None:
    """Append ``number cluster`` to the file (one short write: appends never interleave)."""
    time.sleep(0.05)  # long enough that both clusters take some of the jobs
    line = f"{number} {os.getpgid(0)}\n".encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)
