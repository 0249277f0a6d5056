"""What every benchmark needs before Django starts: its own PostgreSQL database."""

from __future__ import annotations


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in the URL if it does not exist."""
    import environ
    import psycopg
    from psycopg import sql

    config = environ.Env.db_url_config(url)
    if not config["ENGINE"].endswith("postgresql"):
        raise SystemExit(f"DATABASE_URL must be PostgreSQL for this benchmark, not {url!r}")
    conninfo = psycopg.conninfo.make_conninfo(
        host=str(config.get("HOST") or "127.0.0.1"),
        port=str(config.get("PORT") or 5432),
        user=str(config.get("USER") or "postgres"),
        dbname="postgres",
        **({"password": str(config["PASSWORD"])} if config.get("PASSWORD") else {}),
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
            print(f"created database {config['NAME']}", flush=True)
