"""The PostgreSQL side of backups: connection settings, pg_dump and pg_restore commands.

The client programs get the password through ``PGPASSWORD`` in their environment, never
on a command line; databases other than the live one are reached on the same server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from audit.exceptions import BackupError
from db.dialect import is_postgresql


def require_postgresql() -> None:
    """Backups are of PostgreSQL; the SQLite demo is refused by name (decisions.md 54)."""
    if not is_postgresql():
        raise BackupError(
            "DATABASE_URL: backups need PostgreSQL (pg_dump); the SQLite demo database is"
            " not backed up — copy var/ while the demo is stopped instead"
        )


def _params(dbname: str | None = None) -> dict[str, Any]:
    db = settings.DATABASES["default"]
    params: dict[str, Any] = {"dbname": dbname or db["NAME"]}
    if db.get("HOST"):
        params["host"] = db["HOST"]
    if db.get("PORT"):
        params["port"] = str(db["PORT"])
    if db.get("USER"):
        params["user"] = db["USER"]
    return params


def live_database_name() -> str:
    """The name of the database Django is connected to (the test database under pytest)."""
    return str(connection.settings_dict["NAME"])


def connect(dbname: str | None = None, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A plain psycopg connection to ``dbname`` on the live database's server."""
    password = settings.DATABASES["default"].get("PASSWORD") or None
    params = _params(dbname or live_database_name())
    return psycopg.connect(autocommit=autocommit, password=password, **params)


def client_env() -> dict[str, str]:
    """The environment of pg_dump / pg_restore: the connection, the password, nothing on argv."""
    db = settings.DATABASES["default"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if db.get("HOST"):
        env["PGHOST"] = str(db["HOST"])
    if db.get("PORT"):
        env["PGPORT"] = str(db["PORT"])
    if db.get("USER"):
        env["PGUSER"] = str(db["USER"])
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def program(name: str) -> str:
    """The path of a PostgreSQL client program (``BACKUP_PG_BIN_DIR`` or the PATH)."""
    folder = settings.BACKUP_PG_BIN_DIR
    found = str(Path(folder) / name) if folder else shutil.which(name)
    if not found or not Path(found).exists():
        raise BackupError(
            f"BACKUP_PG_BIN_DIR: {name} not found; install the PostgreSQL client programs"
        )
    return found


def database_url(dbname: str) -> str:
    """A DATABASE_URL for ``dbname`` on the live server (for a child process's environment)."""
    from urllib.parse import quote

    db = settings.DATABASES["default"]
    user = quote(str(db.get("USER") or ""), safe="")
    password = db.get("PASSWORD") or ""
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(dbname, safe='')}"


def user_tables(cursor: psycopg.Cursor[Any]) -> list[str]:
    """Every ordinary table of the public schema, by name."""
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    )
    return [row[0] for row in cursor.fetchall()]


def row_counts(cursor: psycopg.Cursor[Any]) -> dict[str, int]:
    """Rows per table, as this cursor's transaction sees them."""
    counts: dict[str, int] = {}
    for table in user_tables(cursor):
        cursor.execute(
            psycopg.sql.SQL("SELECT count(*) FROM {}").format(psycopg.sql.Identifier(table))
        )
        row = cursor.fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def is_empty(dbname: str) -> bool:
    """True when the database has no table in its public schema."""
    with connect(dbname) as conn, conn.cursor() as cursor:
        return not user_tables(cursor)


def database_exists(dbname: str) -> bool:
    with connect("postgres") as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
    return row is not None


def recreate_database(dbname: str) -> None:
    """Drop ``dbname`` (ending its sessions) and create it empty; never the live database."""
    if dbname == live_database_name() or dbname == settings.DATABASES["default"]["NAME"]:
        raise BackupError("database: refusing to drop the live database")
    ident = psycopg.sql.Identifier(dbname)
    with connect("postgres") as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(ident))


def drop_database(dbname: str) -> None:
    if dbname == live_database_name() or dbname == settings.DATABASES["default"]["NAME"]:
        raise BackupError("database: refusing to drop the live database")
    with connect("postgres") as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                psycopg.sql.Identifier(dbname)
            )
        )


def empty_public_schema(dbname: str) -> None:
    """Drop everything in the public schema of ``dbname`` (restore with ``replace``)."""
    if dbname == live_database_name():
        raise BackupError("database: refusing to empty the live database")
    with connect(dbname) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
