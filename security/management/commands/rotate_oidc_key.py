"""manage.py rotate_oidc_key: a new ID-token signing key; the old one published for the
overlap, then deleted (security/services/oidc_keys.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from security.commands import OperatorCommand
from security.exceptions import OidcKeyError
from security.services.oidc_keys import delete_expired_retired_keys, rotate_signing_key


class Command(OperatorCommand):
    help = (
        "Put a new OpenID Connect ID-token signing key in OIDC_RSA_PRIVATE_KEY_FILE; the old"
        " one stays published in the JWKS for OIDC_RETIRED_KEY_HOURS, then is deleted."
        " Restart the web workers afterwards: they read the keys when they start."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--delete-expired-only",
            action="store_true",
            help="only delete the retired keys past their overlap (no new key)",
        )
        parser.add_argument(
            "--compromised",
            action="store_true",
            help="the current key leaked: keep no old key (ID tokens it signed stop verifying)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        by = self.actor(options)
        try:
            if options["delete_expired_only"]:
                count = delete_expired_retired_keys(by=by)
                self.stdout.write(f"Deleted {count} retired ID-token key(s) past their overlap.")
                return
            rotation = rotate_signing_key(
                by=by, compromised=options["compromised"], progress=self.progress
            )
        except OidcKeyError as exc:
            raise CommandError(str(exc)) from exc
        if options["compromised"]:
            retired = f"key {rotation.retired_key_id or '-'} deleted, not published"
        elif rotation.retired_key_id:
            hours = settings.OIDC_RETIRED_KEY_HOURS
            retired = f"key {rotation.retired_key_id} retired (published for {hours} h)"
        else:
            retired = "no key before it"
        self.stdout.write(
            f"ID tokens are signed with key {rotation.key_id} once the web workers restart;"
            f" {retired}; {rotation.deleted} retired key(s) deleted."
        )
