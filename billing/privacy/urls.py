"""Privacy pages of the portal (mounted at /portal/privacy/)."""

from django.urls import path

from billing.privacy import views

app_name = "privacy"

urlpatterns = [
    path("", views.privacy, name="privacy"),
    path("accept/", views.accept_policy, name="accept"),
    path("export/", views.request_export, name="export"),
    path("export/<str:token>/", views.download, name="download"),
    path("erase/", views.request_erasure, name="erase"),
]
