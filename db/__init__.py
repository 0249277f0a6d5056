"""The ground floor: database machinery below every app.

Nothing here imports an app (``audit``, ``security``, ``billing``, ``payments``);
every app may import it. It holds what is about the database rather than the domain:

- ``db.postgresql``: the engine (Django's PostgreSQL backend with a health check that
  needs no round trip, psycopg's own ``timestamptz`` loader, and a cursor that prepares
  only the hot statements);
- ``db.compiled``: hot queries compiled by the ORM once per process
  (``CompiledQuery``, ``compiled``), and a model's INSERT/UPDATE built once
  (``insert``, ``update``, ``insert_sql``, ``update_sql``);
- ``db.prepared``: which statements a connection prepares (``hot``);
- ``db.counters``: counters added to in place, one statement for several tables (the
  fraud engine's velocity counters), and fixed-window counters shared by every process
  (the API's throttles);
- ``db.inserts``: a row inserted unless its unique key holds one, one statement (the
  API's Idempotency-Key claims);
- ``db.dialect``: the one place that asks which database runs (PostgreSQL or the demo's
  SQLite) and the few statements that differ between them;
- ``db.broker``: the job queue's enqueue by a compiled INSERT.

Every use of a Django private API lives in this package, and each has a test in
``tests/db/test_django_internals.py`` that fails, naming the internal, when a Django
upgrade changes it.
"""
