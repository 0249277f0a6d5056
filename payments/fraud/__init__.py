"""The risk engine: every card payment attempt is allowed, held for review or blocked here.

Public API (docs/payments.md, "Risk decisions")::

    from payments.fraud import assess_card_payment      # the one decision point
    from payments.fraud import update_risk_settings      # thresholds, audited
    from payments.fraud import FEATURES, attempt_features # an attempt's features (docs/fraud.md)
    from payments.fraud import score                      # the live model's score, or None
    from payments.fraud import record_label               # fraud or good, audited
    from payments.fraud import train_model_version, promote_model_version

A fraud analyst's approve or decline of a held payment charges or fails it, so it is a
payment service: ``payments.services.decide_risk_review``.

``payments.models`` imports ``payments.fraud.models`` while the app registry is
loading, so the functions are re-exported lazily (PEP 562), as the vault does.
"""

from __future__ import annotations

from payments.lazy_exports import lazy_exports

_EXPORTS = {
    "RiskAssessment": "payments.fraud.rules",
    "assess_card_payment": "payments.fraud.rules",
    "update_risk_settings": "payments.fraud.services",
    "validate_risk_settings": "payments.fraud.services",
    "get_risk_settings": "payments.fraud.selectors",
    "ensure_risk_settings": "payments.fraud.services",
    "FEATURES": "payments.fraud.features",
    "attempt_features": "payments.fraud.features",
    "score": "payments.fraud.scoring",
    "ScoreResult": "payments.fraud.scoring",
    "record_label": "payments.fraud.labels",
    "train_model_version": "payments.fraud.training",
    "promote_model_version": "payments.fraud.training",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
