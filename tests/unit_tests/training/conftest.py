"""Shared fixtures for the training unit tests: small configs, CSV files, a local HTTP server."""

from __future__ import annotations

import copy
import functools
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from src.training.config import TrainingConfig
from src.training.config_loader import validate_config_data
from tests.artifact_factory import SCHEMA_PATH

IRIS_CONFIG: dict[str, Any] = {
    "trainer": "IrisClassifier",
    "model_name": "iris_classifier",
    "test_size": 0.2,
    "random_seed": 7,
    "cv_folds": 3,
    "candidates": [
        {
            "name": "logistic_regression",
            "estimator": "LogisticRegression",
            "params": {"max_iter": 500},
            "grid": {"C": [0.5, 5.0]},
        },
        {"name": "knn", "estimator": "KNeighborsClassifier", "grid": {"n_neighbors": [3, 7]}},
    ],
    "quality_gate": {"min_score": 0.8},
}


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base`` (dicts merge, other values replace)."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@pytest.fixture
def iris_raw() -> Callable[..., dict[str, Any]]:
    """A small valid iris config as a dict, with deep-merged overrides."""
    return lambda **overrides: merge(IRIS_CONFIG, overrides)


@pytest.fixture
def make_config() -> Callable[..., TrainingConfig]:
    """Validate a raw config dict (base: the small iris config) into a TrainingConfig."""

    def build(raw: dict[str, Any] | None = None, **overrides: Any) -> TrainingConfig:
        return validate_config_data(merge(raw if raw is not None else IRIS_CONFIG, overrides))

    return build


def mixed_classification_frame(rows: int = 150, seed: int = 0) -> pd.DataFrame:
    """Numeric + categorical features (with gaps) and a string label that depends on both."""
    rng = np.random.default_rng(seed)
    size = rng.normal(10, 3, rows)
    weight = rng.normal(50, 10, rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    score = (size - 10) / 3 + (colour == "red") * 1.5 - (colour == "blue") * 1.0
    label = np.where(score + rng.normal(0, 0.3, rows) > 0.2, "yes", "no")
    frame = pd.DataFrame({"size": size, "weight": weight, "colour": colour, "label": label})
    frame.loc[::23, "colour"] = None
    frame.loc[::19, "weight"] = np.nan
    return frame


def mixed_regression_frame(rows: int = 160, seed: int = 1) -> pd.DataFrame:
    """A house-price-like table: integer and float columns, categories with gaps, SalePrice."""
    rng = np.random.default_rng(seed)
    area = rng.integers(2_000, 20_000, rows)
    year = rng.integers(1900, 2010, rows)
    zoning = rng.choice(["RL", "RM", "FV"], rows)
    price = 20_000 + 8 * area + 500 * (year - 1900) + (zoning == "FV") * 30_000
    frame = pd.DataFrame(
        {
            "LotArea": area,
            "YearBuilt": year,
            "MSZoning": zoning,
            "SalePrice": price + rng.normal(0, 5_000, rows),
        }
    )
    frame.loc[::17, "MSZoning"] = None
    return frame


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[pd.DataFrame, str], Path]:
    """Write a frame to ``tmp_path/<name>`` and return the path."""

    def write(frame: pd.DataFrame, name: str = "data.csv") -> Path:
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path

    return write


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve a fresh directory over HTTP on 127.0.0.1 (free port); yields (base URL, dir)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def metadata_schema() -> dict[str, Any]:
    """docs/artifact-metadata.schema.json."""
    return json.loads(SCHEMA_PATH.read_text())


def publish_outcome(outcome: Any, root: Path, key: Any = None) -> Any:
    """Publish a `train_and_evaluate` outcome under ``root`` the way the workflow does."""
    from src.training.publish import publish_artifact

    evaluation = outcome.evaluation
    return publish_artifact(
        root, evaluation.draft_metadata, evaluation.model_joblib, evaluation.onnx.model_bytes, key
    )
