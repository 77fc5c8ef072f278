"""IrisClassifier: scikit-learn's bundled iris data (the default config)."""

from __future__ import annotations

import pandas as pd
from sklearn.datasets import load_iris

from src.training.base import Trainer
from src.training.registry import register_workflow

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_frame() -> pd.DataFrame:
    """Iris with snake_case feature names and string labels in column ``species``."""
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = IRIS_FEATURES
    frame["species"] = pd.Series(data.target_names[data.target], dtype=object)
    return frame


@register_workflow
class IrisClassifier(Trainer):
    """Classifies iris species (setosa/versicolor/virginica) from four measurements.

    Uses the bundled data unless ``data.source`` names a CSV with the same columns.
    """

    fixed_task = "classification"
    default_target = "species"
    builtin_source = "sklearn:iris"

    def load_data(self) -> pd.DataFrame:
        """The bundled iris table, or the CSV at ``data.source``."""
        if self.config.data.source:
            return self.read_source()
        return iris_frame()
