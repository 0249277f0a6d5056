"""Every Django private API that ``db/`` relies on, checked one by one.

``db.compiled`` builds instances the way Django's own iterables do, the engine subclasses
Django's cursor and loader, and ``db.instances`` reads what a query loaded with an
instance. None of that is documented API: a Django upgrade may change it. Each test
here fails with a message naming the internal that changed, before a hot query fails
somewhere far away.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from django.db import connection
from django.db.models import ForeignKey, Model
from django.db.models.base import ModelState
from django.utils import timezone

from security.models import User

pytestmark = pytest.mark.django_db


def _changed(internal: str, what: str) -> str:
    return f"Django internal {internal} changed: {what} (db/ relies on it; see its docstring)"


def _compiler(queryset: Any) -> Any:
    compiler = queryset.query.get_compiler(using=connection.alias)
    compiler.as_sql()  # setup_query fills select, klass_info, annotation_col_map
    return compiler


def _sessions_with_users() -> Any:
    from security.models import UserSession

    return UserSession.objects.select_related("user").filter(pk=1)


def test_queryset_iterable_class() -> None:
    from django.db.models.query import ModelIterable, ValuesIterable

    users = User.objects.all()
    assert getattr(users, "_iterable_class", None) is ModelIterable, _changed(
        "QuerySet._iterable_class", "a model queryset's is not ModelIterable"
    )
    assert getattr(users.values("pk"), "_iterable_class", None) is ValuesIterable, _changed(
        "QuerySet._iterable_class", "a values() queryset's is not ValuesIterable"
    )


def test_queryset_known_related_objects() -> None:
    known = getattr(User.objects.all(), "_known_related_objects", None)
    assert isinstance(known, dict), _changed("QuerySet._known_related_objects", "not a dict")


def test_queryset_prefetch_related_lookups() -> None:
    lookups = getattr(User.objects.prefetch_related("groups"), "_prefetch_related_lookups", None)
    assert lookups == ("groups",), _changed(
        "QuerySet._prefetch_related_lookups", f"holds {lookups!r}, not the lookups given"
    )


def test_query_select_names() -> None:
    query = User.objects.values("username").query
    for name in ("extra_select", "values_select", "annotation_select"):
        assert hasattr(query, name), _changed(f"Query.{name}", "missing")
    assert list(query.values_select) == ["username"], _changed(
        "Query.values_select", "does not list the values() fields"
    )


def test_compiler_klass_info() -> None:
    compiler = _compiler(_sessions_with_users())
    info = getattr(compiler, "klass_info", None)
    assert isinstance(info, dict), _changed("SQLCompiler.klass_info", "not a dict")
    for key in ("model", "select_fields", "related_klass_infos"):
        assert key in info, _changed("SQLCompiler.klass_info", f"no {key!r} key")
    assert info["related_klass_infos"], _changed(
        "SQLCompiler.klass_info['related_klass_infos']", "select_related left no entry"
    )


def test_compiler_select_columns_name_their_field() -> None:
    compiler = _compiler(User.objects.filter(pk=1))
    select = getattr(compiler, "select", None)
    assert select, _changed("SQLCompiler.select", "empty after as_sql()")
    attnames = [column[0].target.attname for column in select[: compiler.col_count]]
    assert "username" in attnames, _changed(
        "SQLCompiler.select", "column[0].target.attname no longer names the field"
    )


def test_compiler_annotation_col_map_and_converters() -> None:
    from django.db.models import Value

    compiler = _compiler(User.objects.annotate(flag=Value(1)).filter(pk=1))
    assert "flag" in (getattr(compiler, "annotation_col_map", None) or {}), _changed(
        "SQLCompiler.annotation_col_map", "an annotation's column is not mapped"
    )
    fields = [column[0] for column in compiler.select[: compiler.col_count]]
    converters = compiler.get_converters(fields)
    assert isinstance(converters, dict), _changed("SQLCompiler.get_converters", "not a dict")
    rows = compiler.apply_converters([tuple(range(compiler.col_count))], converters)
    assert len(list(rows)) == 1, _changed("SQLCompiler.apply_converters", "rows lost")


def test_get_related_populators() -> None:
    from django.db.models.query import get_related_populators

    parameters = list(inspect.signature(get_related_populators).parameters)
    assert parameters == ["klass_info", "select", "db"], _changed(
        "django.db.models.query.get_related_populators", f"parameters are {parameters}"
    )
    compiler = _compiler(_sessions_with_users())
    populators = get_related_populators(compiler.klass_info, compiler.select, connection.alias)  # type: ignore[call-arg]
    assert len(populators) == 1, _changed("get_related_populators", "no populator for the user")
    populator = populators[0]
    for name in ("model_cls", "related_populators", "populate"):
        assert hasattr(populator, name), _changed(f"RelatedPopulator.{name}", "missing")
    assert populator.model_cls is User, _changed(
        "RelatedPopulator.model_cls", "is not the related model"
    )


def test_model_state_and_deferred_fields_by_dict() -> None:
    state = ModelState()
    for name in ("adding", "db", "fields_cache"):
        assert hasattr(state, name), _changed(f"ModelState.{name}", "missing")
    user = User.__new__(User)
    user.__dict__.update({"id": 1, "username": "ada"})
    user._state = state
    deferred = user.get_deferred_fields()
    assert "email" in deferred and "username" not in deferred, _changed(
        "Model.get_deferred_fields", "a field left out of __dict__ no longer counts as deferred"
    )


def test_fields_cache_holds_select_related_objects() -> None:
    from security.models import UserSession

    user = User.objects.create_user(username="ada", email="ada@example.com")
    now = timezone.now()
    session = UserSession.objects.create(
        user=user, session_key="k" * 32, created_at=now, last_seen_at=now, ip="127.0.0.1"
    )
    loaded = UserSession.objects.select_related("user").get(pk=session.pk)
    assert loaded._state.fields_cache.get("user") == user, _changed(
        "ModelState.fields_cache", "does not hold a select_related object under its name"
    )


def test_server_binding_cursor_and_its_factory() -> None:
    pytest.importorskip("psycopg")
    from django.db.backends.postgresql import base

    cursor = getattr(base, "ServerBindingCursor", None)
    assert inspect.isclass(cursor), _changed(
        "django.db.backends.postgresql.base.ServerBindingCursor", "missing"
    )
    source = inspect.getsource(base.DatabaseWrapper.get_connection_params)
    assert '"cursor_factory"' in source and "ServerBindingCursor" in source, _changed(
        "postgresql DatabaseWrapper.get_connection_params",
        "no longer sets cursor_factory to ServerBindingCursor",
    )


def test_base_tz_loader() -> None:
    pytest.importorskip("psycopg")
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    assert hasattr(BaseTzLoader, "timezone"), _changed(
        "django.db.backends.postgresql.psycopg_any.BaseTzLoader.timezone", "missing"
    )


@pytest.mark.postgres_only
def test_the_engine_installs_the_preparing_cursor() -> None:
    from db.prepared import preparing_cursor_class

    connection.ensure_connection()
    assert connection.connection.cursor_factory is preparing_cursor_class(), _changed(
        "postgresql DatabaseWrapper.get_connection_params",
        "the engine's cursor factory was not used for the connection",
    )


def test_foreign_key_attname_is_the_column_value() -> None:
    from security.models import UserSession

    field = UserSession._meta.get_field("user")
    assert isinstance(field, ForeignKey) and field.attname == "user_id", _changed(
        "ForeignKey.attname", "no longer the raw id's attribute"
    )
    assert issubclass(User, Model)
