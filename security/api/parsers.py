"""The API's one parser: JSON, read up to ``API_MAX_BODY_BYTES`` (a larger body is a 413 in
the error shape, refused before it is read into memory), numbers with a fraction parsed as
``Decimal`` (never a float: money and quantities stay exact) and ``NaN``/``Infinity``
refused."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import IO, Any

from django.conf import settings
from django.http.request import RawPostDataException
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser

from security.api.errors import BodyTooLarge


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_body_size(request: Any) -> None:
    """Before anything reads the body: refuse one whose declared ``Content-Length`` is over
    the limit (413), then read it (within the limit): the bearer check reads the body
    through REST framework's parser, and the Idempotency-Key's fingerprint needs the raw
    bytes."""
    limit = settings.API_MAX_BODY_BYTES
    declared = _declared_length(request.META)
    if declared > limit:
        raise BodyTooLarge(limit)
    if declared > 0:
        # A form body was parsed (and its stream used up) by Django's middleware: it is
        # refused as not JSON after authentication (check_body_type).
        with contextlib.suppress(RawPostDataException):
            request._request.body  # noqa: B018


def check_body_type(request: Any) -> None:
    """A body that is not JSON is refused (415), after authentication: a form body would
    otherwise reach the view as parsed by Django's middleware, past REST framework's own
    parser check."""
    if _declared_length(request.META) > 0:
        media_type = str(request.META.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()
        if media_type != BoundedJSONParser.media_type:
            raise UnsupportedMediaType(media_type or "none")


def _declared_length(meta: dict[str, Any]) -> int:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: dict[str, Any] | None = None,
    ) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(limit)
        try:
            text = raw.decode("utf-8")
            return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
        except UnicodeDecodeError:
            raise ParseError("the body is not UTF-8") from None
        except ValueError as exc:
            raise ParseError(str(exc)) from None
