"""Make a trained model version live: a fraud analyst's decision, audited, never to a worse one
by accident."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from payments.exceptions import FraudModelRefused
from payments.fraud.models import FraudModelVersion
from payments.fraud.scoring import load_artefact
from payments.fraud.training.train import read_holdout
from payments.step_up import require_step_up
from security.actors import Actor, is_system, user_of

PROMOTE_PERMISSION = "payments.promote_fraud_model"


def holdout_precision(version: FraudModelVersion, on: FraudModelVersion) -> float | None:
    """Average precision of ``version``'s model on ``on``'s holdout (None when the holdout
    lacks one of the model's features)."""
    from sklearn.metrics import average_precision_score

    matrix, labels, names = read_holdout(bytes(on.holdout_bytes))
    artefact = load_artefact(bytes(version.model_bytes), version.model_sha256)
    wanted = list(artefact["features"])
    if not set(wanted) <= set(names) or labels.sum() == 0:
        return None
    columns = [names.index(name) for name in wanted]
    probabilities = artefact["estimator"].predict_proba(matrix[:, columns])[:, 1]
    return float(average_precision_score(labels, probabilities))


def promote_model_version(
    version: FraudModelVersion,
    *,
    by: Actor,
    override: bool = False,
    reason: str = "",
    request: HttpRequest | None = None,
) -> FraudModelVersion:
    """Make ``version`` the live model: a fraud analyst (``payments.promote_fraud_model``)
    with a fresh second factor (step-up: the model decides who is blocked), or the platform
    itself (``SYSTEM``: only the demo installation's seed does so).

    Its stored model must match its SHA-256. It is compared with the live model on its own
    holdout week: a version with a lower average precision there is refused unless
    ``override`` with a reason. Audited ``fraud.model_promoted`` with both figures and
    whether it was overridden."""
    if not is_system(by):
        if not (hasattr(by, "has_perm") and by.has_perm(PROMOTE_PERMISSION)):
            raise FraudModelRefused(
                _("making a fraud model live needs the fraud analyst's permission")
            )
        require_step_up(request, by, to=_("make a fraud model live"), refused=FraudModelRefused)
    reason = reason.strip() if isinstance(reason, str) else ""
    if override and not reason:
        raise FraudModelRefused(_("say why a worse model should go live"), field="reason")
    with transaction.atomic():
        candidate = FraudModelVersion.objects.select_for_update().get(pk=version.pk)
        live = FraudModelVersion.objects.select_for_update().filter(live=True).first()
        if live is not None and live.pk == candidate.pk:
            return candidate
        mine = holdout_precision(candidate, candidate)  # also checks its SHA-256
        theirs = holdout_precision(live, candidate) if live is not None else None
        if theirs is None and live is not None:
            theirs = float(live.metrics.get("average_precision", 0.0))
        worse = theirs is not None and mine is not None and mine < theirs
        if worse and not override:
            raise FraudModelRefused(
                _(
                    "version %(new)s does worse than the live version %(live)s on its holdout"
                    " (average precision %(mine).3f against %(theirs).3f): promote it only"
                    " with an override and a reason"
                )
                % {"new": candidate.pk, "live": live.pk if live else "-", "mine": mine or 0.0,
                   "theirs": theirs},
                field="override",
            )  # fmt: skip
        if live is not None:
            live.live = False
            live.save(update_fields=["live"])
        candidate.live = True
        candidate.promoted_at = timezone.now()
        candidate.promoted_by = user_of(by)
        candidate.promote_reason = reason[:500]
        candidate.save(update_fields=["live", "promoted_at", "promoted_by", "promote_reason"])
        record(
            "fraud.model_promoted",
            actor=by,
            obj=candidate,
            request=request,
            previous_version=live.pk if live else None,
            # Figures as text: the audit log holds no floats.
            average_precision=f"{mine:.4f}" if mine is not None else None,
            live_average_precision=f"{theirs:.4f}" if theirs is not None else None,
            worse_than_live=worse,
            override=bool(worse and override),
            reason=candidate.promote_reason,
            model_sha256=candidate.model_sha256,
        )
    return candidate
