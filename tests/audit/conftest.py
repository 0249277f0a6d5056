"""Audit tests sign with a throwaway key in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper


@pytest.fixture(autouse=True)
def audit_key_file(settings: SettingsWrapper, tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "audit_ed25519.pem"
    settings.AUDIT_SIGNING_KEY_FILE = path
    settings.AUDIT_TRUSTED_PUBLIC_KEYS = []
    return path
