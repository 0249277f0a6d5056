"""The vault role, for real: two PostgreSQL roles, the grants, and a ``vault`` alias.

The suite's connection handler always knows a ``vault`` alias on PostgreSQL, a test
mirror of ``default`` (``tests/conftest.py``, ``django_db_modify_db_settings``), but
the code uses it only while ``settings.VAULT_DATABASE_ALIAS`` names it, as
VAULT_DATABASE_URL makes it in production. ``vault_role`` (a fixture, for tests marked
``django_db(transaction=True, databases=["default", "vault"])``: the vault's connection
commits on its own) does that for one test, with two roles named after the test
database, so that parallel test databases (xdist workers, other engineers'
TILLIT_TEST_DATABASE) never share one:

- ``<test database>_web``: the web application's role. ``default`` is reopened as this
  role for the test: it may read and write every table (as a deployment grants it)
  except ``payments_vault_cardsecret``, whose privileges ``manage.py grant_vault_role``
  (the migration's own function) revokes;
- ``<test database>_vault``: the vault role, the ``vault`` alias's user, granted the
  secrets table (and SELECT on the data keys) only.

Afterwards both connections are the suite's owner role again and both roles are dropped
(their privileges with them).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections
from psycopg import sql

from db.routers import VAULT_DB_ALIAS


@dataclass(frozen=True)
class VaultRoles:
    web: str
    vault: str


def role_names(database: str) -> VaultRoles:
    """Roles named after the test database (PostgreSQL names end at 63 bytes)."""
    base = database
    if len(database) > 50:
        base = database[:40] + hashlib.sha256(database.encode()).hexdigest()[:10]
    return VaultRoles(web=f"{base}_web", vault=f"{base}_vault")


def add_vault_mirror() -> None:
    """Give the connection handler a ``vault`` alias: ``default``'s settings, a test
    mirror of it (so the test database is created once and both aliases reach it)."""
    default = connections.settings[DEFAULT_DB_ALIAS]
    if default["ENGINE"].endswith("postgresql") and VAULT_DB_ALIAS not in connections.settings:
        mirror = copy.deepcopy(default)
        mirror["TEST"] = {**mirror.get("TEST", {}), "MIRROR": DEFAULT_DB_ALIAS}
        connections.settings[VAULT_DB_ALIAS] = mirror


def _execute(statement: sql.Composable) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.cursor))


def _drop_roles(roles: VaultRoles) -> None:
    for role in (roles.web, roles.vault):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            exists = cursor.fetchone() is not None
        if exists:
            _execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            _execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def vault_role(transactional_db: None, settings: Any) -> Iterator[VaultRoles]:
    """The web role on ``default`` (no privilege on the secrets table) and the vault role
    on the ``vault`` alias, for one transactional test."""
    if connection.vendor != "postgresql" or VAULT_DB_ALIAS not in connections.settings:
        pytest.skip("the vault role is PostgreSQL's")
    default = connection.settings_dict
    vault = connections[VAULT_DB_ALIAS].settings_dict
    roles = role_names(default["NAME"])
    _drop_roles(roles)  # left by an interrupted run
    web_role, vault_role = sql.Identifier(roles.web), sql.Identifier(roles.vault)
    _execute(sql.SQL("CREATE ROLE {} LOGIN").format(web_role))
    _execute(sql.SQL("CREATE ROLE {} LOGIN").format(vault_role))
    # What a deployment grants its web role (docs/deploy.md): every table and sequence.
    tables = "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
    sequences = "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}"
    _execute(sql.SQL(tables).format(web_role))
    _execute(sql.SQL(sequences).format(web_role))
    settings.DATABASE_WEB_ROLE, settings.VAULT_DATABASE_ROLE = roles.web, roles.vault
    call_command("grant_vault_role", verbosity=0)

    owner = default["USER"], default["PASSWORD"]
    connection.close()
    connections[VAULT_DB_ALIAS].close()
    default["USER"], default["PASSWORD"] = roles.web, ""
    vault["USER"], vault["PASSWORD"] = roles.vault, ""
    settings.VAULT_DATABASE_ALIAS = VAULT_DB_ALIAS  # as VAULT_DATABASE_URL sets it
    try:
        yield roles
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            # The test ran as the web role throughout (a reconnection would still be it).
            assert cursor.fetchone()[0] == roles.web
    finally:
        connections[VAULT_DB_ALIAS].close()
        connection.close()
        default["USER"], default["PASSWORD"] = owner
        vault["USER"], vault["PASSWORD"] = owner
        _drop_roles(roles)
