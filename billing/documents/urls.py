"""Document URLs: signed PDF downloads, the period export and the verification page."""

from django.urls import path

from billing.documents import views

app_name = "documents"

urlpatterns = [
    path("invoices/<int:invoice_id>/pdf/", views.download_document, name="download"),
    path(
        "invoices/<int:invoice_id>/pdf/v<int:version>/",
        views.download_document,
        name="download_version",
    ),
    path("export/", views.export_documents, name="export"),
    path("verify/", views.verify_upload, name="verify"),
]
