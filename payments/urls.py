"""Payments URLs (portal side)."""

from django.urls import path

from payments import views

app_name = "payments"

urlpatterns = [
    path("cards/new/", views.add_card, name="add_card"),
    path("cards/<int:pk>/delete/", views.delete_card, name="delete_card"),
]
