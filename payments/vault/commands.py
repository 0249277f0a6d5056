"""Shared bits of the vault's management commands."""

from __future__ import annotations

from security.commands import OperatorCommand


class VaultCommand(OperatorCommand):
    """A vault command: ``--actor USERNAME`` and progress lines (``security.commands``)."""
