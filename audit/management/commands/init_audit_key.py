"""Create the Ed25519 checkpoint key file (mode 0600); never replaces an existing one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.exceptions import AuditKeyError
from audit.keys import create_key_file, describe_public_key, load_signing_key, public_key_hex


class Command(BaseCommand):
    help = "Create the audit checkpoint signing key at AUDIT_SIGNING_KEY_FILE (0600)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            path = create_key_file()
        except AuditKeyError as exc:
            raise CommandError(str(exc)) from exc
        public = describe_public_key(public_key_hex(load_signing_key()))
        self.stdout.write(f"Created {path} (mode 0600). Publish the public key:")
        self.stdout.write(f"key id:     {public.key_id}")
        self.stdout.write(f"public key: {public.public_key_hex}")
        self.stdout.write(public.public_key_pem.rstrip())
