"""Two workers creating the demo signing key at once: one key wins, whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.documents import keys


def test_a_second_writer_fails_and_leaves_the_first_key_whole(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.p12"
    keys._write_private(path, b"first key")

    with pytest.raises(FileExistsError):
        keys._write_private(path, b"second key")

    assert path.read_bytes() == b"first key"
    assert path.stat().st_mode & 0o077 == 0
    assert [p.name for p in path.parent.iterdir()] == ["signing.p12"]
