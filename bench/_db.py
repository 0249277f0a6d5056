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


def recreate_database(url: str) -> None:
    """Drop and create again the PostgreSQL database named in the URL; refuses a name
    without "bench" in it."""
    import psycopg
    from psycopg import sql

    params = psycopg.conninfo.conninfo_to_dict(url)
    name = str(params.get("dbname", ""))
    if "bench" not in name:
        raise SystemExit(f"DATABASE_URL: refusing to drop {name!r}; use a dedicated *bench* DB")
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True) as admin:  # type: ignore[arg-type]
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def settle_database(tables: tuple[str, ...]) -> None:
    """VACUUM (ANALYZE) the tables set-up wrote, then CHECKPOINT: the measured part starts
    from the same state every run, instead of beside autovacuum and the checkpointer
    cleaning up after set-up (the figures of one run against the next varied by a third)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")
        try:
            cursor.execute("CHECKPOINT")
        except Exception as exc:  # needs superuser or pg_checkpoint; the figures then vary more
            print(f"    (no CHECKPOINT before measuring: {type(exc).__name__})", flush=True)
