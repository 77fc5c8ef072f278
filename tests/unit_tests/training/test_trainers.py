"""Each shipped trainer trains, evaluates and publishes a loadable, schema-valid artifact."""

from __future__ import annotations

from pathlib import Path

import joblib
import jsonschema
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.preprocessing import OneHotEncoder

from src.training.base import Trainer
from src.training.config_loader import validate_config_data
from src.training.errors import ConfigError, DataSourceError, DataValidationError
from src.training.onnx_export import onnx_feeds
from src.training.registry import register_workflow, unregister_workflow
from src.training.steps import train_and_evaluate
from src.training.trainers.iris import IRIS_FEATURES, iris_frame
from tests.unit_tests.training.conftest import (
    mixed_classification_frame,
    mixed_regression_frame,
    publish_outcome,
)

REPO = Path(__file__).resolve().parents[3]


def csv_config(source: str, task: str, target: str, candidates: list, **extra) -> dict:
    return {
        "trainer": "CSVTrainer",
        "model_name": f"csv_{task}",
        "task": task,
        "data": {"source": source, "target": target, **extra.pop("data", {})},
        "cv_folds": 3,
        "random_seed": 3,
        "candidates": candidates,
        **extra,
    }


def test_iris_classifier_end_to_end(tmp_path, make_config, metadata_schema):
    outcome = train_and_evaluate(make_config())
    test = outcome.evaluation.test_metrics
    assert test["accuracy"] > 0.85
    assert set(test["per_class"]) == {"setosa", "versicolor", "virginica"}
    assert test["confusion_matrix"]["labels"] == ["setosa", "versicolor", "virginica"]
    assert np.array(test["confusion_matrix"]["matrix"]).sum() == 30

    published = publish_outcome(outcome, tmp_path)
    jsonschema.validate(published.metadata, metadata_schema)
    model = joblib.load(published.directory / "model.joblib")
    frame = iris_frame()
    predictions = model.predict(frame[IRIS_FEATURES].head(5))
    assert list(predictions) == ["setosa"] * 5
    # all-numeric pipelines also take a float array in feature order
    with pytest.warns(UserWarning, match="valid feature names"):
        assert list(model.predict(frame[IRIS_FEATURES].to_numpy()[:2])) == ["setosa", "setosa"]
    assert published.metadata["target"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert [f["name"] for f in published.metadata["features"]] == IRIS_FEATURES


def test_iris_reads_a_csv_with_the_same_columns(write_csv, make_config):
    path = write_csv(iris_frame(), "iris.csv")
    outcome = train_and_evaluate(make_config(data={"source": str(path)}))
    assert outcome.loaded.source == str(path)
    assert outcome.loaded.fingerprint == train_and_evaluate(make_config()).loaded.fingerprint


def test_csv_classification_with_categories(write_csv, tmp_path, metadata_schema):
    path = write_csv(mixed_classification_frame(), "labels.csv")
    raw = csv_config(
        str(path),
        "classification",
        "label",
        [
            {"name": "lr", "estimator": "LogisticRegression", "grid": {"C": [0.3, 3.0]}},
            {"name": "tree", "estimator": "DecisionTreeClassifier", "params": {"max_depth": 3}},
        ],
        selection_metric="f1_macro",
    )
    outcome = train_and_evaluate(validate_config_data(raw))
    assert outcome.evaluation.test_metrics["f1_macro"] > 0.7
    published = publish_outcome(outcome, tmp_path / "out")
    metadata = published.metadata
    jsonschema.validate(metadata, metadata_schema)
    colour = next(f for f in metadata["features"] if f["name"] == "colour")
    assert colour == {
        "name": "colour",
        "type": "category",
        "categories": ["blue", "green", "red"],
        "allow_unknown": True,
        "imputed": True,  # most-frequent imputation of "" inside the saved pipeline
    }
    assert all(f["imputed"] for f in metadata["features"])  # training imputes every feature
    assert metadata["reference"]["colour"]["kind"] == "categorical"
    assert metadata["reference"]["colour"]["missing"] > 0
    model = joblib.load(published.directory / "model.joblib")
    # an unseen category is tolerated (one-hot ignores it), a missing one ("") is imputed
    rows = pd.DataFrame(
        {"size": [14.0, 6.0, 10.0], "weight": [50.0, np.nan, 50.0], "colour": ["red", "", "pink"]}
    )
    assert set(model.predict(rows)) <= {"yes", "no"}
    assert model.predict_proba(rows).shape == (3, 2)


def test_csv_regression_from_url_with_one_hot(http_server, tmp_path, metadata_schema):
    base, root = http_server
    mixed_regression_frame().to_csv(root / "houses.csv", index=False)
    raw = csv_config(
        f"{base}/houses.csv",
        "regression",
        "SalePrice",
        [
            {"name": "linear", "estimator": "LinearRegression"},
            {"name": "ridge", "estimator": "Ridge", "grid": {"alpha": [0.1, 10.0]}},
        ],
        quality_gate={"metric": "r2", "min_score": 0.8},
    )
    outcome = train_and_evaluate(validate_config_data(raw))
    model = outcome.best.model
    preprocess = model.named_steps["preprocess"]
    assert isinstance(preprocess, ColumnTransformer)
    encoder = preprocess.named_transformers_["categorical"].named_steps["onehot"]
    assert isinstance(encoder, OneHotEncoder)
    assert encoder.handle_unknown == "ignore"
    test = outcome.evaluation.test_metrics
    assert set(test) >= {"rmse", "mae", "r2"}
    assert test["r2"] > 0.8
    # the one-hot pipeline converts to ONNX too (one input per column)
    onnx = outcome.evaluation.onnx
    assert onnx.converted, onnx.info
    assert [i["name"] for i in onnx.info["inputs"]] == ["LotArea", "YearBuilt", "MSZoning"]
    session = ort.InferenceSession(onnx.model_bytes, providers=["CPUExecutionProvider"])
    x_test = outcome.split.X_test
    got = session.run(None, onnx_feeds(x_test, outcome.loaded.data.spec))[0].ravel()
    np.testing.assert_allclose(got, model.predict(x_test), rtol=1e-4)

    published = publish_outcome(outcome, tmp_path / "out")
    jsonschema.validate(published.metadata, metadata_schema)
    assert published.metadata["data"]["source"] == f"{base}/houses.csv"
    assert published.metadata["target"]["classes"] is None
    assert published.metadata["target"]["distribution"]["kind"] == "numeric"


def test_house_prices_example_config_runs_offline(tmp_path, metadata_schema, monkeypatch):
    monkeypatch.chdir(REPO)  # data.source is relative to the working directory
    from src.training.config_loader import load_config

    config = load_config("src/training/configs/house_prices.yaml")
    outcome = train_and_evaluate(config)
    assert outcome.evaluation.test_metrics["r2"] >= config.quality_gate.min_score
    spec = outcome.loaded.data.spec
    assert "MSSubClass" in spec.categorical
    assert {"MSZoning", "LotConfig", "BldgType", "Exterior1st"} <= set(spec.categorical)
    published = publish_outcome(outcome, tmp_path)
    jsonschema.validate(published.metadata, metadata_schema)
    # every candidate, the forest included, compiles to a parity-passing float32 graph
    compiled = {c["name"]: c["onnx"] for c in published.metadata["metrics"]["candidates"]}
    assert list(compiled) == ["linear_regression", "ridge", "random_forest"]
    for entry in compiled.values():
        assert (entry["precision"], entry["reason"]) == ("float32", None)
        assert entry["parity"]["max_rel_error"] <= 1e-5


def test_house_prices_forest_candidate_publishes_its_onnx_graph(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    from src.training.config_loader import load_config

    config = load_config("src/training/configs/house_prices.yaml")
    forest = [c for c in config.candidates if c.estimator == "RandomForestRegressor"]
    outcome = train_and_evaluate(config.model_copy(update={"candidates": forest}))
    preprocess = outcome.best.model.named_steps["preprocess"]
    numeric_steps = [name for name, _ in preprocess.named_transformers_["numeric"].steps]
    assert numeric_steps == ["impute"]  # no scaler in front of the forest
    published = publish_outcome(outcome, tmp_path)
    onnx = published.metadata["onnx"]
    assert onnx["path"] == "model.onnx"
    assert onnx["precision"] == "float32"
    assert onnx["parity"]["n_rows"] == 80
    assert onnx["parity"]["max_rel_error"] <= 1e-5
    session = ort.InferenceSession(
        (published.directory / "model.onnx").read_bytes(), providers=["CPUExecutionProvider"]
    )
    x_test = outcome.split.X_test
    got = session.run(None, onnx_feeds(x_test, outcome.loaded.data.spec))[0].ravel()
    np.testing.assert_allclose(got, outcome.best.model.predict(x_test), rtol=1e-5)


def test_default_iris_config_compiles_every_candidate():
    from src.training.config import DEFAULT_CONFIG_PATH
    from src.training.config_loader import load_config

    outcome = train_and_evaluate(load_config(REPO / DEFAULT_CONFIG_PATH))
    compiled = {
        c["name"]: c["onnx"] for c in outcome.evaluation.draft_metadata["metrics"]["candidates"]
    }
    assert list(compiled) == ["logistic_regression", "random_forest", "knn"]
    for entry in compiled.values():
        assert (entry["precision"], entry["reason"]) == ("float32", None)
        assert entry["parity"]["labels_equal"] is True
        assert entry["parity"]["max_abs_prob_diff"] <= 1e-5


def test_diabetes_example(tmp_path, metadata_schema):
    from src.training.config_loader import load_config

    config = load_config(REPO / "src/training/configs/diabetes.yaml")
    outcome = train_and_evaluate(config)
    assert outcome.loaded.source == "sklearn:diabetes"
    assert outcome.evaluation.test_metrics["r2"] > config.quality_gate.min_score
    published = publish_outcome(outcome, tmp_path)
    jsonschema.validate(published.metadata, metadata_schema)
    assert (published.directory / "model.onnx").exists()


def test_csv_trainer_errors_name_the_problem(tmp_path):
    raw = csv_config(
        str(tmp_path / "nope.csv"),
        "regression",
        "SalePrice",
        [{"name": "linear", "estimator": "LinearRegression"}],
    )
    with pytest.raises(DataSourceError, match="data file not found"):
        train_and_evaluate(validate_config_data(raw))
    mixed_regression_frame().to_csv(tmp_path / "h.csv", index=False)
    raw["data"] = {"source": str(tmp_path / "h.csv"), "target": "Price"}
    with pytest.raises(DataValidationError, match="target column 'Price' not found"):
        train_and_evaluate(validate_config_data(raw))


def test_adding_a_trainer_is_one_class_a_decorator_and_a_config(tmp_path, metadata_schema):
    """The docs/training.md example, verbatim in spirit: a wine classifier."""

    @register_workflow
    class WineClassifier(Trainer):
        fixed_task = "classification"
        default_target = "cultivar"
        builtin_source = "sklearn:wine"

        def load_data(self) -> pd.DataFrame:
            data = load_wine(as_frame=True)
            frame = data.frame.rename(columns={"target": "cultivar"})
            frame["cultivar"] = frame["cultivar"].map(lambda i: f"cultivar_{i}")
            return frame

    try:
        config = validate_config_data(
            {
                "trainer": "WineClassifier",
                "model_name": "wine",
                "cv_folds": 3,
                "candidates": [{"name": "lr", "estimator": "LogisticRegression"}],
            }
        )
        outcome = train_and_evaluate(config)
        assert outcome.evaluation.test_metrics["accuracy"] > 0.85
        published = publish_outcome(outcome, tmp_path)
        jsonschema.validate(published.metadata, metadata_schema)
        assert published.metadata["trainer_class"] == "WineClassifier"
    finally:
        unregister_workflow("WineClassifier")
    with pytest.raises(ConfigError, match="unknown trainer 'WineClassifier'"):
        validate_config_data({**config.model_dump(), "task": None})


def test_same_config_and_seed_give_the_same_result(make_config):
    first = train_and_evaluate(make_config())
    second = train_and_evaluate(make_config())
    assert first.loaded.fingerprint == second.loaded.fingerprint
    assert first.evaluation.test_metrics == second.evaluation.test_metrics
    assert [r.summary()["cv_mean"] for r in first.results] == [
        r.summary()["cv_mean"] for r in second.results
    ]
    assert first.split.X_test.index.tolist() == second.split.X_test.index.tolist()


def test_a_different_seed_changes_the_split(make_config):
    first = train_and_evaluate(make_config())
    other = train_and_evaluate(make_config(random_seed=8))
    assert first.loaded.fingerprint == other.loaded.fingerprint
    assert first.split.X_test.index.tolist() != other.split.X_test.index.tolist()


def test_classification_split_is_stratified(make_config):
    outcome = train_and_evaluate(make_config())
    assert outcome.split.y_test.value_counts().tolist() == [10, 10, 10]
