"""DiabetesRegressor: an offline regression example on scikit-learn's bundled diabetes data.

It is also the smallest example of a custom trainer: one class, one decorator, one method.
"""

from __future__ import annotations

import pandas as pd
from sklearn.datasets import load_diabetes

from src.training.base import Trainer
from src.training.registry import register_workflow


@register_workflow
class DiabetesRegressor(Trainer):
    """Predicts disease progression one year after baseline from ten measurements."""

    fixed_task = "regression"
    default_target = "progression"
    builtin_source = "sklearn:diabetes"

    def load_data(self) -> pd.DataFrame:
        """The bundled diabetes table in original units (not mean-centred)."""
        data = load_diabetes(as_frame=True, scaled=False)
        return data.frame.rename(columns={"target": "progression"})
