"""Config validation: every bad field fails with one message that names it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from src.training.config_loader import load_config, parse_config_text, validate_config_data
from src.training.errors import ConfigError, UnknownEstimatorError, UnknownTrainerError
from tests.unit_tests.training.conftest import IRIS_CONFIG, merge

REPO = Path(__file__).resolve().parents[3]


def error_for(raw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        validate_config_data(raw)
    return info.value


def test_shipped_configs_are_valid():
    default = load_config(REPO / "src/training/config.yaml")
    assert default.trainer == "IrisClassifier"
    assert default.model_name == "iris_classifier"
    assert default.task == "classification"
    assert len(default.candidates) == 3
    diabetes = load_config(REPO / "src/training/configs/diabetes.yaml")
    assert (diabetes.task, diabetes.metric) == ("regression", "rmse")
    house = load_config(REPO / "src/training/configs/house_prices.yaml")
    assert (house.trainer, house.data.target) == ("CSVTrainer", "SalePrice")


def test_defaults_are_filled_in():
    config = validate_config_data(
        {
            "trainer": "IrisClassifier",
            "model_name": "iris",
            "candidates": [{"name": "lr", "estimator": "LogisticRegression"}],
        }
    )
    assert config.task == "classification"
    assert config.metric == "accuracy"
    assert (config.test_size, config.random_seed, config.cv_folds) == (0.2, 42, 5)
    assert config.output_dir == "artifacts"
    assert config.export_onnx is True
    assert config.quality_gate is None


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"model_name": "Iris Classifier"}, "model_name", "should match pattern"),
        ({"test_size": 1.5}, "test_size", "less than 1"),
        ({"test_size": 0}, "test_size", "greater than 0"),
        ({"cv_folds": 1}, "cv_folds", "greater than or equal to 2"),
        ({"random_seed": -3}, "random_seed", "greater than or equal to 0"),
        ({"candidates": []}, "candidates", "at least 1 item"),
        ({"selection_metric": "auc"}, "selection_metric", "'accuracy'"),
        ({"selection_metric": "rmse"}, "selection_metric", "not a classification metric"),
        ({"export_onnx": "maybe"}, "export_onnx", "valid boolean"),
        ({"data": {"source": "ftp://example.org/x.csv"}}, "data.source", "http(s)"),
        ({"data": {"source": "  "}}, "data.source", "must not be empty"),
        (
            {"data": {"numeric": ["a"], "categorical": ["a"]}},
            "data",
            "both numeric and categorical",
        ),
        ({"data": {"timeout_seconds": 0}}, "data.timeout_seconds", "greater than 0"),
        ({"quality_gate": {"min_score": 0.9, "max_score": 1.0}}, "quality_gate", "exactly one"),
        (
            {"quality_gate": {"min_score": None, "max_score": 0.9}},
            "quality_gate.max_score",
            "min_score",
        ),
        ({"quality_gate": {"metric": "r2", "min_score": 0.1}}, "quality_gate.metric", "not a"),
        ({"task": "regression"}, "task", "always classification"),
        ({"trainer": "Nope"}, "trainer", "known trainers"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"data": {"sauce": "x.csv"}}, "data.sauce", "Extra inputs are not permitted"),
    ],
)
def test_bad_top_level_fields_are_named(overrides, field, fragment):
    error = error_for(merge(IRIS_CONFIG, overrides))
    assert error.field == field
    assert str(error).startswith(f"config error: {field}: ")
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("candidate", "field", "fragment"),
    [
        ({"name": "x", "estimator": "XGBoost"}, "candidates.0.estimator", "unknown estimator"),
        (
            {"name": "x", "estimator": "os.system"},
            "candidates.0.estimator",
            "allowed: DecisionTreeClassifier",
        ),
        ({"name": "x", "estimator": "Ridge"}, "candidates.0.estimator", "regression estimator"),
        (
            {"name": "x", "estimator": "LogisticRegression", "grid": {"C": [-1.0]}},
            "candidates.0.grid.C",
            "must be a float in the range (0.0, inf]",
        ),
        (
            {"name": "x", "estimator": "LogisticRegression", "grid": {"Cc": [1.0]}},
            "candidates.0.grid.Cc",
            "not a hyperparameter of LogisticRegression",
        ),
        (
            {"name": "x", "estimator": "RandomForestClassifier", "params": {"max_depth": "deep"}},
            "candidates.0.params.max_depth",
            "max_depth",
        ),
        (
            {"name": "x", "estimator": "LogisticRegression", "grid": {"C": []}},
            "candidates.0.grid",
            "has no values",
        ),
        (
            {"name": "x", "estimator": "LogisticRegression", "grid": {"C": 1.0}},
            "candidates.0.grid.C",
            "valid list",
        ),
        (
            {"name": "x", "estimator": "SVC", "params": {"C": 1.0}, "grid": {"C": [1.0]}},
            "candidates.0",
            "both params and grid",
        ),
        ({"name": "bad name!", "estimator": "SVC"}, "candidates.0.name", "pattern"),
        ({"name": "x", "estimator": "SVC", "gird": {}}, "candidates.0.gird", "Extra inputs"),
        ({"estimator": "SVC"}, "candidates.0.name", "required field is missing"),
    ],
)
def test_bad_candidates_are_named(candidate, field, fragment):
    error = error_for(merge(IRIS_CONFIG, {"candidates": [candidate]}))
    assert error.field == field, str(error)
    assert fragment in str(error)


def test_second_candidate_index_is_named():
    raw = merge(IRIS_CONFIG, {})
    raw["candidates"].append({"name": "svc", "estimator": "SVC", "grid": {"C": [1.0, -2.0]}})
    error = error_for(raw)
    assert error.field == "candidates.2.grid.C"


def test_duplicate_candidate_names_are_refused():
    raw = merge(IRIS_CONFIG, {})
    raw["candidates"].append(dict(raw["candidates"][0]))
    error = error_for(raw)
    assert error.field == "candidates"
    assert "'logistic_regression' is listed twice" in str(error)


def test_estimator_classes_are_typed_errors():
    with pytest.raises(UnknownEstimatorError):
        validate_config_data(merge(IRIS_CONFIG, {"candidates": [{"name": "x", "estimator": "X"}]}))
    with pytest.raises(UnknownTrainerError):
        validate_config_data(merge(IRIS_CONFIG, {"trainer": "X"}))


def test_dotted_estimator_paths_on_the_allow_list_work():
    raw = merge(IRIS_CONFIG, {})
    raw["candidates"][0]["estimator"] = "sklearn.linear_model.LogisticRegression"
    assert validate_config_data(raw).candidates[0].estimator.endswith("LogisticRegression")


def test_csv_trainer_needs_task_source_and_target():
    base = {
        "trainer": "CSVTrainer",
        "model_name": "csv",
        "candidates": [{"name": "lr", "estimator": "LogisticRegression"}],
    }
    assert error_for(base).field == "task"
    assert error_for({**base, "task": "classification"}).field == "data.source"
    missing_target = {**base, "task": "classification", "data": {"source": "x.csv"}}
    assert error_for(missing_target).field == "data.target"


def test_error_counts_extra_problems_in_one_line():
    error = error_for(merge(IRIS_CONFIG, {"test_size": 2, "cv_folds": 0}))
    message = str(error)
    assert "\n" not in message
    assert "(and 1 more problem(s))" in message


def test_yaml_problems_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config: .* is not valid YAML at line 2"):
        parse_config_text("trainer: x\n  bad: [", origin="cfg.yaml")
    with pytest.raises(ConfigError, match="config: the file must hold a YAML mapping"):
        parse_config_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"config: file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_round_trip_through_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(IRIS_CONFIG))
    config = load_config(path)
    assert config.candidate("knn").grid == {"n_neighbors": [3, 7]}
    with pytest.raises(KeyError):
        config.candidate("missing")
