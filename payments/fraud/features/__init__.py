"""The fraud features of a card payment attempt (docs/fraud.md, "Features").

    from payments.fraud.features import FEATURES, attempt_features

``FEATURES`` names every feature (kind, meaning, unit): rules are checked against it and
the model trains on its ``number`` and ``bool`` features. ``attempt_features`` computes
them for one attempt from the database in a fixed number of queries; ``stream_features``
computes the same from a time-ordered stream of past payments (a CSV or the simulator),
through the same derivation (``compute.derive``), so training and scoring agree.
"""

from __future__ import annotations

from payments.fraud.features.compute import Attempt, derive
from payments.fraud.features.offline import PastPayment, read_csv, stream_features, write_csv
from payments.fraud.features.online import attempt_features, read_attempt
from payments.fraud.features.registry import FEATURES, MODEL_FEATURES, FeatureSpec

__all__ = [
    "FEATURES",
    "MODEL_FEATURES",
    "Attempt",
    "FeatureSpec",
    "PastPayment",
    "attempt_features",
    "derive",
    "read_attempt",
    "read_csv",
    "stream_features",
    "write_csv",
]
