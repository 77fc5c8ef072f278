"""The ONNX backend: answers equal to scikit-learn's, sha256 and parity checks, graph shapes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from src.serve.artifact import resolve
from src.serve.backends.answers import FINITE_CHECK_MIN_ROWS
from src.serve.backends.base import NumericRows
from src.serve.backends.onnx import OnnxBackend, native_run
from src.serve.backends.sklearn import SklearnBackend
from src.serve.errors import IncompatibleArtifactError, IntegrityError, OnnxUnsupportedError
from src.serve.loaded_model import build_loaded_model
from tests.artifact_factory import (
    BuiltArtifact,
    build_iris_artifact,
    iris_frame,
    number_features,
    rewrite_metadata,
)
from tests.unit_tests.serve.backends.support import LogLines, app_client, corrupt_onnx, iris_records
from tests.unit_tests.serve.helpers import (
    AUTH,
    make_settings,
    publish_custom_artifact,
)

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")
PROBA_TOLERANCE = 1e-5


# --- helpers ------------------------------------------------------------------------------------


def _export(directory: Path, onnx_model: Any, parity: dict[str, Any] | None = None) -> None:
    """Write ``model.onnx`` next to an artifact and record it in its metadata."""
    data = onnx_model.SerializeToString()
    (directory / "model.onnx").write_bytes(data)
    rewrite_metadata(
        directory,
        onnx={
            "path": "model.onnx",
            "sha256": hashlib.sha256(data).hexdigest(),
            "opset": 17,
            "converter": "skl2onnx",
            "parity": parity or {"n_rows": 10, "labels_equal": True, "max_abs_prob_diff": 0.0},
            "reason": None,
        },
    )


def _iris_answers(artifacts: Path, backend: str) -> tuple[list[Any], list[Any]]:
    """The app's answers under ``backend``: one batch of every iris row, then every tenth row
    predicted alone."""
    with app_client(artifacts, inference_backend=backend) as client:
        assert client.get("/health").json()["backend"] == backend
        response = client.post("/predict/batch", json={"records": iris_records()}, headers=AUTH)
        assert response.status_code == 200, response.text
        single = [
            client.post("/predict", json=record, headers=AUTH).json()
            for record in iris_records()[::10]
        ]
    return response.json()["predictions"], single


def _assert_same_answers(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert [p["prediction"] for p in a] == [p["prediction"] for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa["probabilities"].keys() == pb["probabilities"].keys()
        for key, value in pa["probabilities"].items():
            assert abs(value - pb["probabilities"][key]) <= PROBA_TOLERANCE


# --- parity and integrity ----------------------------------------------------------------------


def test_onnx_answers_equal_sklearn_answers_on_iris(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris_onnx: BuiltArtifact
) -> None:
    onnx_batch, onnx_single = _iris_answers(artifacts, "onnx")
    sk_batch, sk_single = _iris_answers(artifacts, "sklearn")
    assert len({p["prediction"] for p in onnx_batch}) == 3  # all classes occur
    _assert_same_answers(onnx_batch, sk_batch)
    _assert_same_answers(onnx_single, sk_single)
    assert onnx_batch[0]["probabilities"] != sk_batch[0]["probabilities"]  # really two runtimes


def test_rows_with_their_matrix_answer_like_plain_rows(
    artifacts: Path, iris_onnx: BuiltArtifact
) -> None:
    model = build_loaded_model(resolve(artifacts, "iris_classifier"), make_settings(artifacts))
    assert isinstance(model.backend, OnnxBackend)
    rows = [tuple(r.values()) for r in iris_records()]
    plain = model.backend.predict(rows)
    assert model.backend.predict(NumericRows(rows, np.asarray(rows, dtype=np.float64))) == plain


def test_the_native_run_answers_what_the_public_run_answers(
    artifacts: Path, iris_onnx: BuiltArtifact
) -> None:
    session = ort.InferenceSession(
        str(iris_onnx.directory / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    feed = {name: np.asarray([tuple(r.values()) for r in iris_records()], dtype=np.float32)}
    run = native_run(session)
    assert run != session.run  # the wrapped native session's method
    native, public = run(outputs, feed, None), session.run(outputs, feed, None)
    assert len(native) == len(public) == 2
    for a, b in zip(native, public, strict=True):
        np.testing.assert_array_equal(a, b)


def test_without_a_native_session_the_public_run_is_used() -> None:
    class PublicOnly:
        def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> list:
            return ["answer"]

    session = PublicOnly()
    assert native_run(session)(["label"], {}, None) == ["answer"]  # type: ignore[arg-type]


def test_a_corrupted_onnx_file_is_refused_by_its_sha256(
    artifacts: Path, iris_onnx: BuiltArtifact
) -> None:
    corrupt_onnx(iris_onnx)
    ref = resolve(artifacts, "iris_classifier")
    with pytest.raises(IntegrityError, match=r"sha256 of model\.onnx"):
        build_loaded_model(ref, make_settings(artifacts, inference_backend="onnx"))
    with pytest.raises(IntegrityError, match="ALLOW_PICKLE=false"):
        build_loaded_model(ref, make_settings(artifacts, allow_pickle=False))


def test_a_missing_onnx_file_is_refused_under_onnx(
    artifacts: Path, iris_onnx: BuiltArtifact
) -> None:
    (iris_onnx.directory / "model.onnx").unlink()
    with pytest.raises(Exception, match=r"model\.onnx is missing"):
        build_loaded_model(
            resolve(artifacts, "iris_classifier"),
            make_settings(artifacts, inference_backend="onnx"),
        )


def test_recorded_parity_failure_disqualifies_the_graph(artifacts: Path) -> None:
    # A scaled forest converted in float32: the scaler moves values across split thresholds,
    # so its parity figures fail (the factory records them without judging).
    build_iris_artifact(
        artifacts, estimator=RandomForestClassifier(n_estimators=20, random_state=0), with_onnx=True
    )
    ref = resolve(artifacts, "iris_classifier")
    model = build_loaded_model(ref, make_settings(artifacts))
    assert isinstance(model.backend, SklearnBackend)
    with pytest.raises(OnnxUnsupportedError, match="parity"):
        build_loaded_model(ref, make_settings(artifacts, inference_backend="onnx"))


def test_a_forest_without_scaler_converts_and_matches(artifacts: Path) -> None:
    build_iris_artifact(
        artifacts,
        estimator=RandomForestClassifier(n_estimators=30, random_state=0),
        with_onnx=True,
        scale=False,
    )
    settings = make_settings(artifacts)
    ref = resolve(artifacts, "iris_classifier")
    onnx_model = build_loaded_model(ref, settings)
    sk_model = build_loaded_model(ref, make_settings(artifacts, inference_backend="sklearn"))
    assert isinstance(onnx_model.backend, OnnxBackend)
    rows = [tuple(r.values()) for r in iris_records()]
    got, want = onnx_model.backend.predict(rows), sk_model.backend.predict(rows)
    assert [p.prediction for p in got] == [p.prediction for p in want]
    assert all(
        abs(g.probabilities[k] - w.probabilities[k]) <= PROBA_TOLERANCE  # type: ignore[index]
        for g, w in zip(got, want, strict=True)
        for k in w.probabilities or {}
    )


# --- graph shapes -------------------------------------------------------------------------------


def test_double_input_graphs_are_fed_float64(artifacts: Path, iris: BuiltArtifact) -> None:
    import skl2onnx

    pipeline = joblib.load(iris.directory / "model.joblib")
    frame, _ = iris_frame()
    converted = skl2onnx.to_onnx(
        pipeline,
        frame.to_numpy(dtype=np.float64)[:1],
        options={LogisticRegression: {"zipmap": False}},
    )
    _export(iris.directory, converted)
    model = build_loaded_model(resolve(artifacts, "iris_classifier"), make_settings(artifacts))
    assert isinstance(model.backend, OnnxBackend)
    assert model.backend._session.get_inputs()[0].type == "tensor(double)"
    rows = [tuple(r.values()) for r in iris_records()]
    got = model.backend.predict(rows)
    want = pipeline.predict_proba(frame)
    assert np.abs(np.array([list(p.probabilities.values()) for p in got]) - want).max() < 1e-6  # type: ignore[union-attr]


def test_zipmap_graphs_fall_back_with_a_reason(
    artifacts: Path, iris: BuiltArtifact, log_lines: LogLines
) -> None:
    import skl2onnx

    pipeline = joblib.load(iris.directory / "model.joblib")
    frame, _ = iris_frame()
    _export(iris.directory, skl2onnx.to_onnx(pipeline, frame.to_numpy(dtype=np.float32)[:1]))
    model = build_loaded_model(resolve(artifacts, "iris_classifier"), make_settings(artifacts))
    assert isinstance(model.backend, SklearnBackend)
    assert any("ZipMap" in line for line in log_lines)


def _width_regressor(
    artifacts: Path, coefficient: float | None = None
) -> tuple[Path, pd.DataFrame]:
    """Publish a petal-width regressor (scaler + linear regression) with its ONNX graph;
    ``coefficient`` replaces every coefficient in the graph. Returns its directory and data."""
    import skl2onnx

    frame, _ = iris_frame()
    features, target = frame.drop(columns="petal_width"), frame["petal_width"].rename("width")
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LinearRegression())])
    version = publish_custom_artifact(
        artifacts,
        model_name="width",
        frame=features,
        target=target,
        pipeline=pipeline,
        feature_specs=number_features(features.columns),
        task="regression",
    )
    directory = artifacts / "width" / version
    exported = joblib.load(directory / "model.joblib")
    if coefficient is not None:
        exported[-1].coef_[:] = coefficient
    _export(
        directory,
        skl2onnx.to_onnx(exported, features.to_numpy(np.float32)[:1]),
        parity={"n_rows": 150, "max_rel_error": 1e-7},
    )
    return directory, features


def test_regression_graphs_answer_the_same_values(artifacts: Path) -> None:
    directory, features = _width_regressor(artifacts)
    settings = make_settings(artifacts, model_name="width")
    model = build_loaded_model(resolve(artifacts, "width"), settings)
    assert isinstance(model.backend, OnnxBackend)
    assert not model.backend.has_probabilities
    rows = [tuple(r) for r in features.itertuples(index=False)]
    got = np.array([p.prediction for p in model.backend.predict(rows)])
    want = joblib.load(directory / "model.joblib").predict(features)
    assert all(isinstance(p.prediction, float) for p in model.backend.predict(rows[:2]))
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-5


def _fruit(root: Path) -> tuple[Path, pd.DataFrame, Any]:
    """Publish a fruit classifier (a number and a string feature, integer labels); return its
    directory, its data and its graph (one input per feature, no ZipMap), not yet exported."""
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame(
        {
            "weight": rng.normal(150, 20, n),
            "colour": rng.choice(["red", "green", "yellow"], n),
        }
    )
    target = pd.Series(np.where(frame["colour"] == "yellow", 1, 0), name="is_banana")
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["weight"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                    ]
                ),
            ),
            ("model", LogisticRegression()),
        ]
    )
    specs = [
        {"name": "weight", "type": "number", "categories": None, "allow_unknown": False},
        {
            "name": "colour",
            "type": "category",
            "categories": ["green", "red", "yellow"],
            "allow_unknown": True,
        },
    ]
    version = publish_custom_artifact(
        root,
        model_name="fruit",
        frame=frame,
        target=target,
        pipeline=pipeline,
        feature_specs=specs,
        task="classification",
    )
    directory = root / "fruit" / version
    # publish_custom_artifact writes classes as strings; integer labels are the case to check.
    rewrite_metadata(directory, target={"name": "is_banana", "classes": [0, 1]})
    fitted = joblib.load(directory / "model.joblib")
    graph = skl2onnx.convert_sklearn(
        fitted,
        initial_types=[
            ("weight", FloatTensorType([None, 1])),
            ("colour", StringTensorType([None, 1])),
        ],
        options={id(fitted.steps[-1][1]): {"zipmap": False}},
    )
    return directory, frame, graph


def test_categorical_string_inputs_and_integer_labels(artifacts: Path) -> None:
    directory, frame, converted = _fruit(artifacts)
    _export(directory, converted)
    settings = make_settings(artifacts, model_name="fruit")
    model = build_loaded_model(resolve(artifacts, "fruit"), settings)
    assert isinstance(model.backend, OnnxBackend)
    rows = [(w, c) for w, c in frame.itertuples(index=False)] + [(140.0, "purple")]
    got = model.backend.predict(rows)
    sk = build_loaded_model(
        resolve(artifacts, "fruit"),
        make_settings(artifacts, model_name="fruit", inference_backend="sklearn"),
    ).backend.predict(rows)
    assert [p.prediction for p in got] == [p.prediction for p in sk]
    assert {type(p.prediction) for p in got} == {int}
    assert got[0].probabilities is not None
    assert set(got[0].probabilities) == {"0", "1"}
    for g, s in zip(got, sk, strict=True):
        for k, v in (s.probabilities or {}).items():
            assert abs(g.probabilities[k] - v) <= PROBA_TOLERANCE  # type: ignore[index]


def test_a_graph_whose_inputs_do_not_match_the_features_falls_back(artifacts: Path) -> None:
    directory, _, converted = _fruit(artifacts)
    converted.graph.input[1].name = "color"  # no longer a feature name
    for node in converted.graph.node:
        node.input[:] = ["color" if name == "colour" else name for name in node.input]
    _export(directory, converted)
    ref = resolve(artifacts, "fruit")
    model = build_loaded_model(ref, make_settings(artifacts, model_name="fruit"))
    assert isinstance(model.backend, SklearnBackend)
    with pytest.raises(IncompatibleArtifactError, match="neither one matrix nor one column"):
        build_loaded_model(
            ref, make_settings(artifacts, model_name="fruit", inference_backend="onnx")
        )


def test_a_float64_graph_answers_predict_like_scikit_learn(
    clean_env: pytest.MonkeyPatch, artifacts: Path
) -> None:
    built = build_iris_artifact(artifacts, with_onnx=True, onnx_precision="float64")
    assert built.metadata["onnx"]["precision"] == "float64"
    model = build_loaded_model(resolve(artifacts, "iris_classifier"), make_settings(artifacts))
    assert isinstance(model.backend, OnnxBackend)
    assert model.backend._session.get_inputs()[0].type == "tensor(double)"
    onnx_batch, onnx_single = _iris_answers(artifacts, "onnx")
    pipeline = joblib.load(built.directory / "model.joblib")
    frame, _ = iris_frame()
    expected = pipeline.predict_proba(frame)
    labels = pipeline.predict(frame)
    assert [p["prediction"] for p in onnx_batch] == list(labels)
    assert [p["prediction"] for p in onnx_single] == list(labels[::10])
    got = np.array([[p["probabilities"][c] for c in pipeline.classes_] for p in onnx_batch])
    # fed doubles: far closer to scikit-learn than a float32 graph's ~1e-7
    assert np.abs(got - expected).max() < 1e-12


def test_the_backend_reports_whether_its_outputs_are_finite(artifacts: Path) -> None:
    # A regression graph whose coefficients overflow float32 for a large (schema-valid) input:
    # the backend flags the batch, and the data plane then names the row (422, not a 200).
    _, features = _width_regressor(artifacts, coefficient=1e30)
    settings = make_settings(artifacts, model_name="width")
    model = build_loaded_model(resolve(artifacts, "width"), settings)
    assert isinstance(model.backend, OnnxBackend)
    typical = tuple(features.iloc[0])
    many = FINITE_CHECK_MIN_ROWS
    assert model.backend.predict([typical] * many).all_finite is True
    flagged = model.backend.predict([typical] * (many - 1) + [(1e12, 1.0, 1.0)])
    assert flagged.all_finite is False
    assert np.isfinite(flagged[0].prediction)
    assert not np.isfinite(flagged[-1].prediction)

    with app_client(artifacts, model_name="width", inference_backend="onnx") as client:
        names = list(features.columns)
        huge = dict.fromkeys(names, 1.0) | {names[0]: 1e12}
        ordinary = dict(zip(names, typical, strict=True))
        # a batch the backend checks in one pass, and one small enough to be checked per row
        for records in ([ordinary] * (many - 1) + [huge], [ordinary, huge]):
            r = client.post("/predict/batch", json={"records": records}, headers=AUTH)
            assert r.status_code == 422
            assert r.json()["error"]["details"] == [
                {
                    "field": f"records[{len(records) - 1}]",
                    "message": "The model's output for this record is not finite",
                }
            ]
        records = [ordinary] * many
        assert client.post("/predict/batch", json={"records": records}, headers=AUTH).is_success
