"""Training, evaluating and promoting the learned risk model (docs/fraud.md).

from payments.fraud.training import train_model_version, promote_model_version
"""

from __future__ import annotations

from payments.fraud.training.promote import promote_model_version
from payments.fraud.training.train import train_model_version

__all__ = ["promote_model_version", "train_model_version"]
