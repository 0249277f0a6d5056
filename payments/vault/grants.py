"""The vault role's privileges: who may read the card secrets table (PostgreSQL only).

``payments_vault_cardsecret`` is readable only by the vault role (VAULT_DATABASE_ROLE,
the role of VAULT_DATABASE_URL): the web application's role (DATABASE_WEB_ROLE) has
every privilege on it revoked. Applied by the migration that creates the table and by
``manage.py grant_vault_role`` (after the roles are created or renamed); both run as
the role that owns the tables. docs/deploy.md says how to create the roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from db.dialect import is_postgresql

CARD_SECRETS_TABLE = "payments_vault_cardsecret"
# The vault reads a secret with the data key it names (one statement per reveal).
KEY_TABLE = "payments_datakey"


@dataclass(frozen=True)
class GrantReport:
    applied: bool
    message: str


def configured_roles() -> tuple[str, str]:
    """(web role, vault role) from the settings; either may be empty (not configured)."""
    return settings.DATABASE_WEB_ROLE, settings.VAULT_DATABASE_ROLE


def grant_vault_role(connection: Any) -> GrantReport:
    """REVOKE ALL on the secrets table FROM the web role and PUBLIC; GRANT the vault role
    what it needs. Skipped, saying why, on SQLite or when a role is not configured."""
    if not is_postgresql(connection.alias):
        return GrantReport(False, "vault role grants skipped: not PostgreSQL (one role only)")
    web, vault = configured_roles()
    if not web or not vault:
        return GrantReport(
            False,
            "vault role grants skipped: DATABASE_WEB_ROLE and VAULT_DATABASE_ROLE (or"
            " VAULT_DATABASE_URL) are not both set, so every role that can read the other"
            " tables can read the card secrets table (docs/deploy.md, 'The vault role');"
            " set them, then run manage.py grant_vault_role",
        )
    if web == vault:
        raise ImproperlyConfigured("DATABASE_WEB_ROLE and VAULT_DATABASE_ROLE must differ")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for setting, role in (("DATABASE_WEB_ROLE", web), ("VAULT_DATABASE_ROLE", vault)):
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                raise ImproperlyConfigured(f"{setting}: no PostgreSQL role named {role!r}")
        cursor.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%s)",
            [CARD_SECRETS_TABLE],
        )
        row = cursor.fetchone()
        if row is None:
            raise ImproperlyConfigured(f"no table {CARD_SECRETS_TABLE}: run migrate first")
        if row[0] == web:
            raise ImproperlyConfigured(
                f"DATABASE_WEB_ROLE {web!r} owns {CARD_SECRETS_TABLE}: an owner can grant itself"
                " back what is revoked; run the migrations as another role (docs/deploy.md)"
            )
        secrets, keys = quote(CARD_SECRETS_TABLE), quote(KEY_TABLE)
        cursor.execute(f"REVOKE ALL ON {secrets} FROM PUBLIC, {quote(web)}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {secrets} TO {quote(vault)}")
        cursor.execute(f"GRANT SELECT ON {keys} TO {quote(vault)}")
    return GrantReport(
        True,
        f"vault role grants applied: {CARD_SECRETS_TABLE} readable by {vault!r} only"
        f" (all privileges revoked from {web!r})",
    )
