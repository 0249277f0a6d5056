"""The API's own routes (``/api/v1/me``) and the catch-all that answers an unknown API path
in the error shape; each app's ``api`` package adds its endpoints before the catch-all
(config/urls.py). Paths have no trailing slash."""

from __future__ import annotations

from django.urls import path, re_path

from security.api.docs_views import SchemaView, api_docs
from security.api.errors import api_not_found
from security.api.views import MeView

app_name = "api"

urlpatterns = [
    path("v1/me", MeView.as_view(), name="me"),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", api_docs, name="docs"),
]

# Last in config/urls.py's /api/ include list.
not_found_patterns = [re_path(r"^(?P<path>.*)$", api_not_found, name="not-found")]
