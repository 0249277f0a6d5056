"""Hot queries compiled by the ORM once per process, then run again with new values.

Every request and every card payment runs the same few queries (the session, the
user, the portal account, the invoice, the card, the payment under its lock). The
ORM builds each one anew every time, and building (``as_sql``) costs more Python
than sending the query and reading its answer: 0.3-0.8 CPU-ms per query, a third
of a card payment's Python (docs/performance.md, "Hot queries, compiled once").

``CompiledQuery`` keeps the ORM as the one definition of such a query. It builds
the queryset once per process and database with stand-in values for the
arguments, finds the stand-ins among the compiled parameters, and later runs the
same SQL with the real values put in their places, turning rows into model
instances (``select_related`` included) or dicts exactly as the queryset would.

On PostgreSQL only: psycopg receives Python values, so a parameter is the
argument itself. Elsewhere (SQLite, where the ORM adapts values while compiling)
the queryset is simply built and run each time.

This module reads Django internals (``QuerySet._iterable_class``,
``_known_related_objects``, ``_prefetch_related_lookups``, the compiler's
``klass_info``/``select``/``annotation_col_map``, ``get_related_populators`` and
``RelatedPopulator``, ``ModelState``): ``tests/db/test_django_internals.py`` names each
one that a Django upgrade changes.
"""

from __future__ import annotations

import datetime
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import Model, QuerySet, prefetch_related_objects, signals
from django.db.models.base import ModelState
from django.db.models.query import ModelIterable, ValuesIterable, get_related_populators

from db.prepared import hot

_M = TypeVar("_M", bound=Model)

# Stand-ins no real argument equals: negative ids, texts with a NUL (which
# PostgreSQL cannot even store) and times from 1901.
_INT_BASE = -7_340_017_000
_EPOCH = datetime.datetime(1901, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)


def _stand_in(kind: type, index: int) -> Any:
    if kind is int:
        return _INT_BASE - index
    if kind is str:
        return f"\x00compiled-argument-{index}"
    if kind is datetime.datetime:
        return _EPOCH + datetime.timedelta(microseconds=index + 1)
    raise TypeError(f"CompiledQuery: no stand-in for {kind.__name__} arguments")


def _same(value: Any, stand_in: Any) -> bool:
    # type() first: True == 1 and 0 == False must not count as a match.
    return type(value) is type(stand_in) and value == stand_in


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]  # per parameter: the argument's index, or -1 (a constant)
    hydrate: Callable[[list[tuple[Any, ...]]], list[Any]]


class CompiledQuery:
    """``build(*arguments)`` returns a queryset; ``fetch(*arguments)`` its rows as a list.

    ``kinds`` are the arguments' types (int, str or datetime). Each argument must
    reach the SQL as a parameter of its own (not inside a list, not folded into a
    LIKE pattern): compiling refuses otherwise, naming the argument. The queryset
    may be a model queryset (``select_related``, ``select_for_update`` and
    annotations included) or a ``values()`` one.
    """

    def __init__(self, build: Callable[..., QuerySet[Any]], *kinds: type) -> None:
        self.build = build
        self._stand_ins = tuple(_stand_in(kind, n) for n, kind in enumerate(kinds))
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()

    def fetch(self, *arguments: Any, using: str = DEFAULT_DB_ALIAS) -> list[Any]:
        connection = connections[using]
        if connection.vendor != "postgresql":  # db.dialect.is_postgresql, one lookup fewer
            self._check_count(arguments)
            return list(self.build(*arguments).using(using))
        sql, params = self.sql(*arguments, using=using)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return self.results(rows, using=using)

    def sql(self, *arguments: Any, using: str = DEFAULT_DB_ALIAS) -> tuple[str, list[Any]]:
        """The compiled SQL and its parameters for ``arguments`` (PostgreSQL), to run as
        it is or inside a larger statement; ``results`` turns its rows into objects."""
        self._check_count(arguments)
        plan = self._plans.get(using) or self._compile(using)
        pairs = zip(plan.params, plan.slots, strict=True)
        return plan.sql, [arguments[slot] if slot >= 0 else p for p, slot in pairs]

    def _check_count(self, arguments: tuple[Any, ...]) -> None:
        if len(arguments) != len(self._stand_ins):
            raise TypeError(
                f"CompiledQuery: {len(self._stand_ins)} arguments expected, not {len(arguments)}"
            )

    def results(self, rows: list[tuple[Any, ...]], *, using: str = DEFAULT_DB_ALIAS) -> list[Any]:
        """Rows of ``sql``'s columns, as iterating the queryset would give them."""
        plan = self._plans.get(using) or self._compile(using)
        return plan.hydrate(rows)

    def first(self, *arguments: Any, using: str = DEFAULT_DB_ALIAS) -> Any:
        """The first row, or None (the queryset decides the order and the limit)."""
        rows = self.fetch(*arguments, using=using)
        return rows[0] if rows else None

    def _compile(self, using: str) -> _Plan:
        with self._lock:
            if using in self._plans:
                return self._plans[using]
            queryset = self.build(*self._stand_ins).using(using)
            compiler = queryset.query.get_compiler(using=using)
            sql, params = compiler.as_sql()
            slots = tuple(
                next((n for n, s in enumerate(self._stand_ins) if _same(p, s)), -1) for p in params
            )
            missing = set(range(len(self._stand_ins))) - set(slots)
            if missing:
                raise RuntimeError(
                    f"CompiledQuery {self.build.__qualname__}: argument {min(missing)} is not"
                    " a query parameter of its own"
                )
            plan = _Plan(hot(sql), tuple(params), slots, _hydrator(queryset, compiler, using))
            self._plans[using] = plan
            return plan


def _hydrator(
    queryset: QuerySet[Any], compiler: Any, using: str
) -> Callable[[list[tuple[Any, ...]]], list[Any]]:
    """Rows to what iterating ``queryset`` gives (as Django's ModelIterable and
    ValuesIterable do), with the compiler's converters and the related-object
    populators worked out once, from the one compilation."""
    fields = [column[0] for column in compiler.select[0 : compiler.col_count]]
    converters = compiler.get_converters(fields)

    def converted(rows: list[tuple[Any, ...]]) -> Any:
        return compiler.apply_converters(rows, converters) if converters else rows

    if queryset._iterable_class is ValuesIterable:
        query = queryset.query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]

        def as_dicts(rows: list[tuple[Any, ...]]) -> list[Any]:
            return [dict(zip(names, row, strict=True)) for row in converted(rows)]

        return as_dicts
    known = queryset._known_related_objects  # type: ignore[attr-defined]
    if queryset._iterable_class is not ModelIterable or known:
        raise RuntimeError("CompiledQuery: only model and values() querysets are supported")
    select, klass_info = compiler.select, compiler.klass_info
    annotations = dict(compiler.annotation_col_map or {})
    model: type[Model] = klass_info["model"]
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    attnames = [column[0].target.attname for column in select[start:end]]
    populators = get_related_populators(klass_info, select, using)  # type: ignore[call-arg]
    _make_fast(populators)
    prefetch = queryset._prefetch_related_lookups  # type: ignore[attr-defined]
    build = _Builder.for_model(model)

    def as_models(rows: list[tuple[Any, ...]]) -> list[Any]:
        found = []
        for row in converted(rows):
            obj = build.from_db(using, attnames, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in annotations.items():
                setattr(obj, name, row[position])
            found.append(obj)
        if prefetch and found:
            prefetch_related_objects(found, *prefetch)
        return found

    return as_models


def insert_sql(obj: Model, *, using: str = DEFAULT_DB_ALIAS) -> tuple[str, list[Any]]:
    """The INSERT ... RETURNING pk of ``insert`` and its parameters, to use inside a
    larger statement (e.g. ``WITH p AS (...)`` with an audit append; PostgreSQL)."""
    connection = connections[using]
    sql, fields = _insert_sql(type(obj))
    return sql, [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


class _Builder:
    """``Model.from_db``: the instance's ``__dict__`` filled at once, as
    ``Model.__init__`` would leave it, without the per-field loop and the
    pre_init/post_init signals (built only for models nobody listens to those for).
    A field the row does not hold (``defer``) stays out of ``__dict__``, which is how
    Django marks it deferred: read on first access, as ``from_db`` would leave it. A
    fifth of a card payment's Python went to building the rows' instances."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model

    @classmethod
    def for_model(cls, model: type[Model]) -> Any:
        listened = signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model)
        return model if listened else cls(model)

    def from_db(self, using: str, attnames: Sequence[str], values: Sequence[Any]) -> Model:
        obj = self.model.__new__(self.model)
        state = ModelState()
        state.adding = False
        state.db = using
        obj.__dict__.update(zip(attnames, values, strict=True))
        obj._state = state
        return obj


def _make_fast(populators: Sequence[Any]) -> None:
    """Related objects of ``select_related`` built by ``_Builder`` too (RelatedPopulator
    only calls ``model_cls.from_db``)."""
    for populator in populators:
        populator.model_cls = _Builder.for_model(populator.model_cls)
        _make_fast(populator.related_populators)


@functools.cache
def _insert_sql(model: type[Model]) -> tuple[str, tuple[Any, ...]]:
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(quote(str(f.column)) for f in fields)
    values = ", ".join("%s" for _ in fields)
    pk = quote(str(model._meta.pk.column))
    table = quote(model._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING {pk}"  # noqa: S608
    return hot(sql), fields


@functools.cache
def _update_sql(
    model: type[Model], names: tuple[str, ...], returning: bool
) -> tuple[str, tuple[Any, ...]]:
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    fields = tuple(model._meta.get_field(name) for name in names)
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)  # type: ignore[union-attr]
    pk = quote(str(model._meta.pk.column))
    table = quote(model._meta.db_table)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608
    return hot(f"{sql} RETURNING {pk}" if returning else sql), fields


def update_sql(
    obj: Model, fields: Sequence[str], *, using: str = DEFAULT_DB_ALIAS, returning: bool = False
) -> tuple[str, list[Any]]:
    """The UPDATE of ``update`` and its parameters, to use inside a larger statement
    (``returning``: ending in ``RETURNING`` the primary key, as ``audit.write_with_event``
    takes it)."""
    connection = connections[using]
    sql, targets = _update_sql(type(obj), tuple(fields), returning)
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in targets]
    return sql, [*params, obj.pk]


def _signalled(model: type[Model]) -> bool:
    return signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model)


def insert(obj: _M, *, using: str = DEFAULT_DB_ALIAS) -> _M:
    """``obj.save(force_insert=True)`` by an INSERT built once per model (PostgreSQL, a
    model with a database-made primary key and no save signals; else ``save`` itself)."""
    connection = connections[using]
    model = type(obj)
    if connection.vendor != "postgresql" or obj.pk is not None or _signalled(model):
        obj.save(force_insert=True, using=using)
        return obj
    sql, params = insert_sql(obj, using=using)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        mark_inserted(obj, cursor.fetchone()[0], using=using)
    return obj


def mark_inserted(obj: Model, pk: Any, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Make ``obj`` what ``save()`` leaves after its INSERT wrote it with ``pk``."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = using


def update(obj: Model, fields: Sequence[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """``obj.save(update_fields=fields)`` by an UPDATE built once per model and fields
    (PostgreSQL, no save signals; else ``save`` itself)."""
    connection = connections[using]
    model = type(obj)
    if connection.vendor != "postgresql" or _signalled(model):
        obj.save(update_fields=fields, using=using)
        return
    sql, params = update_sql(obj, fields, using=using)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != 1:  # as Model.save says it
            raise DatabaseError("Save with update_fields did not affect any rows.")


def compiled(*kinds: type) -> Callable[[Callable[..., QuerySet[Any]]], CompiledQuery]:
    """Decorator form: ``@compiled(int, str)`` over a function that builds the queryset."""

    def wrap(build: Callable[..., QuerySet[Any]]) -> CompiledQuery:
        return CompiledQuery(build, *kinds)

    return wrap


__all__: Sequence[str] = (
    "CompiledQuery",
    "compiled",
    "insert",
    "insert_sql",
    "mark_inserted",
    "update",
    "update_sql",
)
