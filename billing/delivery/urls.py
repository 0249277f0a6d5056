"""Delivery URLs: the short single-use invoice link sent by email."""

from django.urls import path

from billing.delivery import views

app_name = "delivery"

urlpatterns = [
    path("<str:token>/", views.open_link, name="open_link"),
]
