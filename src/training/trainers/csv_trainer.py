"""CSVTrainer: any CSV (local path or http(s) URL), classification or regression, by config.

Numeric and categorical columns are detected from the data or listed in the config; missing
values are imputed, categories one-hot encoded and numbers scaled (except in front of
tree-based estimators) inside the saved Pipeline.
"""

from __future__ import annotations

import pandas as pd

from src.training.base import Trainer
from src.training.registry import register_workflow


@register_workflow
class CSVTrainer(Trainer):
    """Trains on the CSV named by ``data.source``; ``task`` and ``data.target`` are required."""

    def load_data(self) -> pd.DataFrame:
        """Read ``data.source``."""
        return self.read_source()
