"""The admin home's dashboards: one panel per concern, shown to the roles it serves.

Each app describes its own panels in a ``dashboard.py`` module (``billing/dashboard.py``,
``payments/dashboard.py``, ``security/dashboard.py`` for the security officer and the
auditor); the admin app loads those modules when it starts
(``security.admin_apps.TillitAdminConfig``), as it loads ``admin.py``. This module only
keeps the list: security, the ground floor, never imports the apps whose panels it shows.

A panel is shown to a staff member holding its permission. Its figures come from
selectors that run a fixed number of queries whatever the data's size (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.functional import Promise


@dataclass(frozen=True)
class Panel:
    """One dashboard panel: who sees it, what it shows, where it is drawn."""

    key: str
    title: str | Promise
    permissions: tuple[str, ...]
    """Shown to a user holding any of these (``app_label.codename``)."""
    figures: Callable[[HttpRequest], dict[str, Any]]
    template: str
    order: int = 100


_PANELS: dict[str, Panel] = {}


def register_panel(panel: Panel) -> Panel:
    """Add (or replace, by key) a panel of the admin home."""
    _PANELS[panel.key] = panel
    return panel


def registered_panels() -> list[Panel]:
    """Every panel, in display order."""
    return sorted(_PANELS.values(), key=lambda panel: (panel.order, panel.key))


def may_see(user: Any, panel: Panel) -> bool:
    """Whether ``user`` (staff, verified) sees ``panel``: one of its permissions held."""
    return any(user.has_perm(permission) for permission in panel.permissions)


def panels_for(request: HttpRequest) -> list[dict[str, Any]]:
    """The panels the signed-in staff member sees, each with its figures."""
    user = request.user
    return [
        {"panel": panel, "figures": panel.figures(request), "template": panel.template}
        for panel in registered_panels()
        if may_see(user, panel)
    ]
