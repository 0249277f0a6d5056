"""The ``events`` resource of the API (docs/api.md, docs/webhooks.md): the event log, each
event written as the same document a webhook delivery POSTs.

``GET /api/v1/events`` (cursor-paged, newest first, ``?type=`` to filter) and
``GET /api/v1/events/{id}`` need the scope ``events:read``. A customer's token sees only
its customer's events; an integration's token sees every customer's when its account
holds ``webhooks.view_event`` (granted with the scope); another's event is a 404.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.webhooks.events import EVENT_TYPES
from billing.webhooks.models import Event
from billing.webhooks.selectors import events_visible_to
from security.api.errors import ApiError
from security.api.principal import principal_of
from security.api.views import ApiGenericView


class EventOut(serializers.Serializer):
    """An event: the body of its webhook deliveries."""

    id = serializers.CharField(source="public_id", help_text="evt_..., as Tillit-Event-Id")
    type = serializers.ChoiceField(choices=sorted(EVENT_TYPES))
    created = serializers.IntegerField(help_text="Unix time (seconds)")
    customer = serializers.IntegerField(allow_null=True, source="customer_id")
    data = serializers.DictField(help_text="The object's snapshot; amounts in minor units")

    def to_representation(self, event: Event) -> dict[str, Any]:
        return {
            "id": event.public_id,
            "type": event.type,
            "created": int(event.created_at.timestamp()),
            "customer": event.customer_id,
            "data": event.data,
        }


class _EventsOfThePrincipal(ApiGenericView):
    serializer_class = EventOut
    required_scopes: dict[str, list[str]] = {"GET": ["events:read"]}

    def get_queryset(self) -> QuerySet[Event]:
        return events_visible_to(principal_of(self.request).user)


class EventList(_EventsOfThePrincipal):
    @extend_schema(
        operation_id="events_list",
        summary="The account's events, newest first",
        parameters=[OpenApiParameter("type", str, enum=sorted(EVENT_TYPES), required=False)],
    )
    def get(self, request: Request) -> Response:
        events = self.get_queryset()
        kind = request.query_params.get("type")
        if kind is not None:
            if kind not in EVENT_TYPES:
                raise ApiError(
                    f"type must be one of {', '.join(sorted(EVENT_TYPES))}",
                    status_code=400,
                    code="invalid",
                    field="type",
                )
            events = events.filter(type=kind)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(EventOut(page, many=True).data)


class EventDetail(_EventsOfThePrincipal):
    @extend_schema(summary="One event", operation_id="events_retrieve")
    def get(self, request: Request, event_id: str) -> Response:
        event = self.get_queryset().filter(public_id=event_id).first()
        if event is None:
            raise ApiError("no such event", status_code=404, code="not_found", field="id")
        return Response(EventOut(event).data)


urlpatterns = [
    path("v1/events", EventList.as_view(), name="events"),
    path("v1/events/<str:event_id>", EventDetail.as_view(), name="event"),
]
