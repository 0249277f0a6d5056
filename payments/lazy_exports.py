"""Re-exporting a sub-package's functions lazily (PEP 562), for ``payments.vault`` and
``payments.fraud``: ``payments.models`` imports their models while the app registry is
loading, so their package can import no service at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` that finds ``name`` in ``exports[name]`` (a module path)
    on first use; anything else is an AttributeError naming ``package``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return __getattr__
