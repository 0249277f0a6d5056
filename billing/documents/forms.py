"""Forms of the document pages: they parse and check input, nothing more."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.documents.exceptions import InvalidPeriod, InvalidUpload
from billing.documents.export import parse_period
from billing.documents.verify import check_pdf_upload


def size_text(limit: int) -> str:
    """A byte limit for people: "10 MiB", "512 KiB"."""
    if limit >= 1024 * 1024:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{max(1, limit // 1024)} KiB"


def too_large_text(limit: int) -> str:
    return gettext("the file is larger than the %(limit)s limit") % {"limit": size_text(limit)}


class VerifyUploadForm(forms.Form):
    pdf = forms.FileField(label=_("Invoice PDF"), allow_empty_file=True)

    def clean_pdf(self) -> bytes:
        upload = self.cleaned_data["pdf"]
        limit = int(settings.DOCUMENTS_MAX_UPLOAD_BYTES)
        if upload.size > limit:
            raise forms.ValidationError(too_large_text(limit))
        data = upload.read()
        try:
            check_pdf_upload(data, max_bytes=limit, field_name="pdf")
        except InvalidUpload as exc:
            raise forms.ValidationError(exc.message) from exc
        return bytes(data)


class ExportPeriodForm(forms.Form):
    start = forms.DateField(label="From (issue date)", input_formats=["%Y-%m-%d"])
    end = forms.DateField(label="To (inclusive)", input_formats=["%Y-%m-%d"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("start") and cleaned.get("end"):
            try:
                parse_period(cleaned["start"], cleaned["end"])
            except InvalidPeriod as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned
