from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.artifact_factory import BuiltArtifact, build_iris_artifact


@pytest.fixture(scope="session")
def iris_artifact(tmp_path_factory: pytest.TempPathFactory) -> BuiltArtifact:
    return build_iris_artifact(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture
def iris_metadata(iris_artifact: BuiltArtifact) -> dict[str, Any]:
    return copy.deepcopy(iris_artifact.metadata)


@pytest.fixture
def mixed_metadata(iris_metadata: dict[str, Any]) -> dict[str, Any]:
    """Iris metadata plus a categorical feature ``color`` (red 50%, green 30%, blue 20%)."""
    meta = iris_metadata
    meta["features"].append(
        {"name": "color", "type": "category", "categories": ["red", "green", "blue"],
         "allow_unknown": True}
    )  # fmt: skip
    meta["reference"]["color"] = {
        "kind": "categorical",
        "count": 100,
        "missing": 0,
        "frequencies": {"red": 0.5, "green": 0.3, "blue": 0.2},
    }
    return meta


@pytest.fixture
def regression_metadata(iris_metadata: dict[str, Any]) -> dict[str, Any]:
    meta = iris_metadata
    meta["task"] = "regression"
    meta["target"] = {
        "name": "y",
        "classes": None,
        "distribution": {
            "kind": "numeric", "count": 100, "missing": 0, "mean": 4.5, "std": 2.87,
            "min": 0.0, "max": 10.0,
            "quantiles": {"p01": 0.1, "p05": 0.5, "p25": 2.5, "p50": 5.0, "p75": 7.5,
                          "p95": 9.5, "p99": 9.9},
            "bin_edges": [float(i) for i in range(11)],
            "bin_fractions": [0.1] * 10,
        },
    }  # fmt: skip
    return meta


@pytest.fixture
def mixed_regression_metadata(mixed_metadata: dict[str, Any]) -> dict[str, Any]:
    """``mixed_metadata`` for a regression model predicting values in [0, 1] (uniform)."""
    meta = mixed_metadata
    meta["task"] = "regression"
    meta["target"] = {"name": "y", "classes": None, "distribution": {
        "kind": "numeric", "count": 10, "missing": 0, "mean": 0.5, "std": 0.3, "min": 0.0,
        "max": 1.0, "quantiles": {}, "bin_edges": [i / 10 for i in range(11)],
        "bin_fractions": [0.1] * 10}}  # fmt: skip
    return meta
