"""Loaded models for the codec tests: the iris classifier and the house-price regressor."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.serve.artifact import resolve
from src.serve.loaded_model import LoadedModel, build_loaded_model
from tests.artifact_factory import build_house_artifact, build_iris_artifact
from tests.unit_tests.serve.helpers import make_settings


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both models published in one artifacts directory."""
    root = tmp_path_factory.mktemp("artifacts")
    build_iris_artifact(root)
    build_house_artifact(root)
    return root


@pytest.fixture(scope="module")
def iris_model(model_dir: Path) -> LoadedModel:
    """The iris classifier, loaded as the service loads it."""
    return build_loaded_model(resolve(model_dir, "iris_classifier"), make_settings(model_dir))


@pytest.fixture(scope="module")
def house_model(model_dir: Path) -> LoadedModel:
    """The house-price regressor (number, integer and categorical features)."""
    return build_loaded_model(resolve(model_dir, "house_prices"), make_settings(model_dir))
