"""Verify the chain, and sign a checkpoint, from the admin (security officers, auditors).

Both live under the checkpoint list (``/admin/audit/auditcheckpoint/verify/``,
``.../checkpoint-now/``), for whoever may read the checkpoints; everyone else is refused.
"Verify the chain now" queues ``audit.verification.run_chain_verification`` as a
background job and shows its progress (the page reloads itself while the job runs);
"Make a checkpoint now" signs the head at once (``audit.services.create_checkpoint``).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from audit.exceptions import AuditError
from audit.models import AuditCheckpoint, ChainVerification
from audit.services import create_checkpoint
from audit.verification import request_chain_verification


class ChainVerificationAdminMixin(admin.ModelAdmin):
    """Mixed into the checkpoint admin: the verification page and "checkpoint now"."""

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "verify/",
                wrap(require_http_methods(["GET", "POST"])(self.verify_view)),
                name="audit_verify_chain",
            ),
            path(
                "checkpoint-now/",
                wrap(require_POST(self.checkpoint_now_view)),
                name="audit_checkpoint_now",
            ),
            *super().get_urls(),
        ]

    def _check(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """GET: the last verification and its progress; POST: verify the chain now."""
        self._check(request)
        if request.method == "POST":
            _verification, started = request_chain_verification(by=request.user, request=request)
            if started:
                self.message_user(request, _("The chain verification is queued."), messages.SUCCESS)
            else:
                self.message_user(
                    request, _("A verification is already running: here is its progress.")
                )
            return HttpResponseRedirect(reverse("admin:audit_verify_chain"))
        latest = ChainVerification.objects.order_by("-requested_at", "-pk").first()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Verify the audit chain"),
            "opts": self.model._meta,
            "verification": latest,
            "running": latest is not None and not latest.is_finished,
            "last_checkpoint": AuditCheckpoint.objects.order_by("-seq").first(),
        }
        return TemplateResponse(request, "admin/audit/verify_chain.html", context)

    def checkpoint_now_view(self, request: HttpRequest) -> HttpResponse:
        """Sign the chain's head now (audited as ``audit.checkpointed``)."""
        self._check(request)
        try:
            checkpoint = create_checkpoint(by=request.user)
        except AuditError as exc:
            self.message_user(request, _("No checkpoint was made: %s") % exc, messages.ERROR)
        else:
            assert checkpoint is not None
            self.message_user(
                request,
                _("Checkpoint made: event #%(seq)s is signed.") % {"seq": checkpoint.seq},
                messages.SUCCESS,
            )
        target = request.POST.get("next", "")
        if target not in ("index", "verify"):
            target = "changelist"
        names = {
            "index": "admin:index",
            "verify": "admin:audit_verify_chain",
            "changelist": "admin:audit_auditcheckpoint_changelist",
        }
        return HttpResponseRedirect(reverse(names[target]))
