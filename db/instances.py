"""Model instances: what the ORM already loaded with one.

Django keeps the related objects a query loaded with an instance (``select_related``,
or an authentication backend's own select) in ``instance._state.fields_cache``, which
it does not document; this module is the one reader of it
(``tests/db/test_django_internals.py`` checks it is still there).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model


def cached_relation(obj: Model, name: str, default: Any = None) -> Any:
    """The related object ``name`` loaded with ``obj`` (a forward or one-to-one
    relation, None if loaded and absent), or ``default`` if it was not loaded."""
    return obj._state.fields_cache.get(name, default)
