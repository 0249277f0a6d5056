"""Cursor pagination for every list (docs/api.md, "Pagination"): ``?limit=`` up to
``API_MAX_PAGE_SIZE`` (default ``API_PAGE_SIZE``), opaque ``next``/``previous`` cursors,
newest first by ``-created_at`` unless a view sets ``ordering``. A cursor is stable as
rows are added, and each page is one query however deep the client pages."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    ordering = ("-created_at", "-pk")
    page_size_query_param = "limit"

    @property
    def max_page_size(self) -> int:
        return int(settings.API_MAX_PAGE_SIZE)

    def decode_cursor(self, request: Any) -> Any:
        from rest_framework.exceptions import NotFound

        from security.api.errors import ApiError

        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ApiError(
                "cursor is not one this list gave out",
                status_code=400,
                code="invalid_cursor",
                field="cursor",
            ) from None

    def get_page_size(self, request: Any) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return int(settings.API_PAGE_SIZE)
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            from security.api.errors import ApiError

            raise ApiError(
                f"limit must be a whole number from 1 to {self.max_page_size}",
                status_code=400,
                code="invalid_limit",
                field="limit",
            )
        return size
