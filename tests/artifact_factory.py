"""Build small, real model artifacts the documented way (docs/artifact.md), for tests.

Serving tests must not depend on the training package, so this module writes artifacts with
plain scikit-learn + joblib exactly as the contract describes. The training suite checks that
what the real workflow publishes validates against the same JSON schema.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "artifact-metadata.schema.json"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SIGNATURE_HEADER = "mlops-artifact-v1"


@dataclass(frozen=True)
class BuiltArtifact:
    """Where a test artifact was written and what it holds."""

    root: Path
    model_name: str
    model_version: str
    directory: Path
    metadata: dict[str, Any]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of pandas' row hashes: the data fingerprint of an in-memory table."""
    return hashlib.sha256(pd.util.hash_pandas_object(frame).values.tobytes()).hexdigest()


def numeric_reference(values: np.ndarray) -> dict[str, Any]:
    """Reference statistics for one numeric column, as docs/artifact.md defines them."""
    values = np.asarray(values, dtype=float)
    finite = values[~np.isnan(values)]
    edges = np.quantile(finite, np.linspace(0, 1, 11))
    counts, _ = np.histogram(np.clip(finite, edges[0], edges[-1]), bins=edges)
    q = np.quantile(finite, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    return {
        "kind": "numeric",
        "count": int(values.size),
        "missing": int(values.size - finite.size),
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "quantiles": dict(
            zip(["p01", "p05", "p25", "p50", "p75", "p95", "p99"], map(float, q), strict=True)
        ),
        "bin_edges": [float(e) for e in edges],
        "bin_fractions": [float(c) / finite.size for c in counts],
    }


def categorical_reference(values: list[Any]) -> dict[str, Any]:
    series = pd.Series(values)
    freqs = series.dropna().astype(str).value_counts(normalize=True)
    return {
        "kind": "categorical",
        "count": len(values),
        "missing": int(series.isna().sum()),
        "frequencies": {str(k): float(v) for k, v in freqs.items()},
    }


def iris_frame() -> tuple[pd.DataFrame, pd.Series]:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = IRIS_FEATURES
    target = pd.Series(data.target_names[data.target], name="species")
    return frame, target


def new_version(offset_seconds: int = 0) -> str:
    now = datetime.now(UTC).timestamp() + offset_seconds
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S%fZ")


def number_features(names: Any) -> list[dict[str, Any]]:
    """Feature specs for plain numeric columns."""
    return [
        {"name": name, "type": "number", "categories": None, "allow_unknown": False}
        for name in names
    ]


def feature_reference(frame: pd.DataFrame, feature_specs: list[dict[str, Any]]) -> dict[str, Any]:
    """Reference statistics per feature; an empty category counts as missing, as in training."""
    return {
        spec["name"]: (
            categorical_reference(frame[spec["name"]].replace("", None).tolist())
            if spec["type"] == "category"
            else numeric_reference(frame[spec["name"]].to_numpy())
        )
        for spec in feature_specs
    }


def one_candidate_metrics(
    selection_metric: str,
    test: dict[str, float],
    *,
    name: str,
    estimator: str,
    params: dict[str, Any],
    cv_mean: float,
) -> dict[str, Any]:
    """The metrics entry of a model chosen from a single candidate."""
    candidate = {
        "name": name,
        "estimator": estimator,
        "params": params,
        "cv_mean": cv_mean,
        "cv_std": 0.0,
    }
    return {
        "selection_metric": selection_metric,
        "best_candidate": name,
        "test": test,
        "candidates": [candidate],
    }


def dump_model(root: Path, model_name: str, model_version: str, pipeline: Any) -> Path:
    """Create ``root/model_name/model_version`` holding ``pipeline`` as model.joblib."""
    directory = root / model_name / model_version
    directory.mkdir(parents=True, exist_ok=False)
    joblib.dump(pipeline, directory / "model.joblib")
    return directory


def artifact_metadata(
    directory: Path,
    *,
    trainer_class: str,
    task: str,
    frame: pd.DataFrame,
    feature_specs: list[dict[str, Any]],
    target: pd.Series,
    classes: list[str] | None,
    metrics: dict[str, Any],
    source: str,
    fingerprint: str,
    onnx: dict[str, Any] | None = None,
    signing_key: tuple[str, bytes] | None = None,
) -> dict[str, Any]:
    """The metadata document (docs/artifact.md) for the model dumped in ``directory``.

    Every row of ``frame`` counts as training and test data; the target distribution is
    categorical for classifiers and numeric otherwise; ``onnx`` is the entry of an exported
    graph (none by default).
    """
    model_path = directory / "model.joblib"
    distribution = (
        categorical_reference(target.tolist())
        if task == "classification"
        else numeric_reference(target.to_numpy())
    )
    return {
        "schema_version": 1,
        "model_name": directory.parent.name,
        "model_version": directory.name,
        "trainer_class": trainer_class,
        "task": task,
        "features": feature_specs,
        "target": {"name": str(target.name), "classes": classes, "distribution": distribution},
        "metrics": metrics,
        "data": {
            "source": source,
            "fingerprint": fingerprint,
            "n_rows": len(frame),
            "n_train": len(frame),
            "n_test": len(frame),
        },
        "reference": feature_reference(frame, feature_specs),
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "joblib": joblib.__version__,
        },
        "run": {
            "flow_name": "TestFactory",
            "run_id": "0",
            "pathspec": "TestFactory/0",
            "git_commit": None,
        },
        "created_at": datetime.now(UTC).isoformat(),
        "model_file": {
            "path": "model.joblib",
            "sha256": sha256_file(model_path),
            "size_bytes": model_path.stat().st_size,
        },
        "onnx": onnx or {"path": None, "reason": "not exported by the test factory"},
        "signing": {"algorithm": "HMAC-SHA256", "key_id": signing_key[0]} if signing_key else None,
    }


def publish(
    root: Path,
    directory: Path,
    metadata: dict[str, Any],
    *,
    signing_key: tuple[str, bytes] | None = None,
    latest: bool = True,
) -> BuiltArtifact:
    """Write metadata.json, sign the artifact when given a key and point LATEST at it."""
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2))
    if signing_key:
        sign_artifact(directory, *signing_key)
    if latest:
        (directory.parent / "LATEST").write_text(directory.name + "\n")
    return BuiltArtifact(root, directory.parent.name, directory.name, directory, metadata)


def build_iris_artifact(
    root: Path,
    *,
    model_name: str = "iris_classifier",
    model_version: str | None = None,
    set_latest: bool = True,
    signing_key: tuple[str, bytes] | None = None,
    metadata_overrides: dict[str, Any] | None = None,
    C: float = 1.0,  # noqa: N803 - scikit-learn's name for it
    estimator: Any | None = None,
    with_onnx: bool = False,
    scale: bool = True,
    onnx_precision: str = "float32",
) -> BuiltArtifact:
    """Fit a tiny iris pipeline and publish it under ``root`` per docs/artifact.md.

    ``C`` changes the default LogisticRegression (so two versions predict slightly
    differently); ``estimator`` replaces the scaler + LogisticRegression (e.g. a forest);
    ``with_onnx`` also exports ``model.onnx`` (skl2onnx, zipmap off) with its parity figures;
    ``onnx_precision="float64"`` exports a double-precision graph instead;
    ``scale=False`` leaves out the StandardScaler (tree models: a float32 scaler in ONNX moves
    values across split thresholds, so a scaled forest fails parity);
    ``metadata_overrides`` replaces top-level metadata fields after hashing (for fault tests);
    ``signing_key`` = ``(key_id, secret)`` writes ``signature.json``.
    """
    model_version = model_version or new_version()
    features, target = iris_frame()
    model = estimator if estimator is not None else LogisticRegression(C=C, max_iter=500)
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("model", model)] if scale else [("model", model)]
    )
    pipeline.fit(features, target)
    directory = dump_model(root, model_name, model_version, pipeline)
    onnx_entry = (
        export_onnx(pipeline, features, directory / "model.onnx", onnx_precision)
        if with_onnx
        else None
    )
    accuracy = float((pipeline.predict(features) == target).mean())
    metadata = artifact_metadata(
        directory,
        trainer_class="IrisClassifier",
        task="classification",
        frame=features,
        feature_specs=number_features(IRIS_FEATURES),
        target=target,
        classes=[str(c) for c in pipeline.classes_],
        metrics=one_candidate_metrics(
            "accuracy",
            {"accuracy": accuracy, "f1_macro": accuracy},
            name="logistic_regression",
            estimator="sklearn.linear_model.LogisticRegression",
            params={"C": C},
            cv_mean=accuracy,
        ),
        source="sklearn:iris",
        fingerprint=frame_fingerprint(pd.concat([features, target], axis=1)),
        onnx=onnx_entry,
        signing_key=signing_key,
    )
    metadata.update(metadata_overrides or {})
    return publish(root, directory, metadata, signing_key=signing_key, latest=set_latest)


def export_onnx(
    pipeline: Pipeline, features: pd.DataFrame, path: Path, precision: str = "float32"
) -> dict[str, Any]:
    """Convert ``pipeline`` to ONNX at ``path`` (a ``precision`` graph: float32 or float64)
    and return its metadata entry with parity."""
    # Imported here: only tests that ask for ONNX need the converter.
    import onnxruntime as ort
    import skl2onnx

    inputs = features.to_numpy(dtype=np.dtype(precision))
    model = skl2onnx.to_onnx(
        pipeline, inputs[:1], options={type(pipeline.steps[-1][1]): {"zipmap": False}}
    )
    path.write_bytes(model.SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {session.get_inputs()[0].name: inputs})
    expected = pipeline.predict_proba(features)
    return {
        "path": "model.onnx",
        "sha256": sha256_file(path),
        "opset": int(max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx"))),
        "converter": f"skl2onnx {skl2onnx.__version__}",
        "precision": precision,
        "parity": {
            "n_rows": len(inputs),
            "labels_equal": bool((labels == pipeline.predict(features)).all()),
            "max_abs_prob_diff": float(np.abs(probabilities - expected).max()),
        },
        "reason": None,
    }


def signature_message(directory: Path) -> bytes:
    """The signed message for an artifact directory (docs/artifact.md, "Signing")."""
    lines = [SIGNATURE_HEADER]
    for name in ("metadata.json", "model.joblib", "model.onnx"):
        path = directory / name
        if path.exists():
            lines.append(f"{name} {sha256_file(path)}")
    return "\n".join(lines).encode()


def sign_artifact(directory: Path, key_id: str, secret: bytes) -> None:
    signature = hmac.new(secret, signature_message(directory), hashlib.sha256).hexdigest()
    (directory / "signature.json").write_text(
        json.dumps({"algorithm": "HMAC-SHA256", "key_id": key_id, "signature": signature})
    )


def rewrite_metadata(directory: Path, **changes: Any) -> None:
    """Replace top-level fields of a published artifact's metadata.json (for fault tests)."""
    path = directory / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata.update(changes)
    path.write_text(json.dumps(metadata, indent=2))


def replace_model(directory: Path, data: bytes) -> None:
    """New model.joblib bytes with a matching recorded sha256 and size (only the content is
    wrong)."""
    model = directory / "model.joblib"
    model.write_bytes(data)
    rewrite_metadata(
        directory,
        model_file={"path": "model.joblib", "sha256": sha256_file(model), "size_bytes": len(data)},
    )


def set_latest(root: Path, model_name: str, version: str) -> None:
    tmp = root / model_name / f"LATEST.tmp-{os.getpid()}"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / model_name / "LATEST")


def diabetes_frame() -> tuple[pd.DataFrame, pd.Series]:
    data = load_diabetes(as_frame=True)
    return data.frame.drop(columns="target"), data.frame["target"].rename("progression")


def build_regressor_artifact(
    root: Path,
    *,
    model_name: str = "diabetes_regressor",
    model_version: str | None = None,
    set_latest: bool = True,
    signing_key: tuple[str, bytes] | None = None,
    alpha: float = 1.0,
) -> BuiltArtifact:
    """Fit a tiny diabetes regression pipeline (StandardScaler + Ridge) and publish it under
    ``root`` per docs/artifact.md (a regressor next to the iris classifier)."""
    model_version = model_version or new_version()
    features, target = diabetes_frame()
    pipeline = Pipeline([("scale", StandardScaler()), ("model", Ridge(alpha=alpha))])
    pipeline.fit(features, target)
    directory = dump_model(root, model_name, model_version, pipeline)
    residuals = pipeline.predict(features) - target.to_numpy()
    rmse = float(np.sqrt(np.mean(residuals**2)))
    metadata = artifact_metadata(
        directory,
        trainer_class="DiabetesRegressor",
        task="regression",
        frame=features,
        feature_specs=number_features(features.columns),
        target=target,
        classes=None,
        metrics=one_candidate_metrics(
            "rmse",
            {"rmse": rmse},
            name="ridge",
            estimator="sklearn.linear_model.Ridge",
            params={"alpha": alpha},
            cv_mean=rmse,
        ),
        source="sklearn:diabetes",
        fingerprint=frame_fingerprint(features),
        signing_key=signing_key,
    )
    return publish(root, directory, metadata, signing_key=signing_key, latest=set_latest)


HOUSE_FEATURES = [
    {"name": "area_sqm", "type": "number", "categories": None, "allow_unknown": False},
    {"name": "rooms", "type": "integer", "categories": None, "allow_unknown": False},
    {
        "name": "district",
        "type": "category",
        "categories": ["north", "south", "east"],
        "allow_unknown": False,
    },
]


def house_frame(rows: int = 120) -> tuple[pd.DataFrame, pd.Series]:
    """A small synthetic house-price table: a number, an integer and a categorical feature."""
    rng = np.random.default_rng(7)
    area = rng.uniform(30, 200, rows).round(1)
    rooms = rng.integers(1, 7, rows)
    district = rng.choice(["north", "south", "east"], rows)
    bonus = pd.Series(district).map({"north": 40.0, "south": 0.0, "east": 15.0}).to_numpy()
    price = 2.5 * area + 10.0 * rooms + bonus + rng.normal(0, 5, rows)
    frame = pd.DataFrame({"area_sqm": area, "rooms": rooms, "district": district})
    return frame, pd.Series(price, name="price_k")


def build_house_artifact(
    root: Path,
    *,
    model_name: str = "house_prices",
    model_version: str | None = None,
    signing_key: tuple[str, bytes] | None = None,
) -> BuiltArtifact:
    """Fit a tiny house-price regressor (one-hot district + ridge) and publish it under
    ``root`` per docs/artifact.md, LATEST pointing at it; ``signing_key`` as for iris."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import OneHotEncoder

    model_version = model_version or new_version()
    features, target = house_frame()
    pipeline = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("district", OneHotEncoder(handle_unknown="ignore"), ["district"]),
                        ("numbers", StandardScaler(), ["area_sqm", "rooms"]),
                    ]
                ),
            ),
            ("model", Ridge(alpha=1.0)),
        ]
    )
    pipeline.fit(features, target)
    directory = dump_model(root, model_name, model_version, pipeline)
    r2 = float(pipeline.score(features, target))
    metadata = artifact_metadata(
        directory,
        trainer_class="HousePriceRegressor",
        task="regression",
        frame=features,
        feature_specs=HOUSE_FEATURES,
        target=target,
        classes=None,
        metrics=one_candidate_metrics(
            "r2",
            {"r2": r2},
            name="ridge",
            estimator="sklearn.linear_model.Ridge",
            params={"alpha": 1.0},
            cv_mean=r2,
        ),
        source="synthetic:house_prices",
        fingerprint=frame_fingerprint(features),
        signing_key=signing_key,
    )
    return publish(root, directory, metadata, signing_key=signing_key)


HOUSE_PRICES_CSV = Path(__file__).resolve().parent.parent / "data" / "house_prices.csv"
HOUSE_TARGET = "SalePrice"
HOUSE_CATEGORIES = ["MSZoning", "LotConfig", "BldgType", "Exterior1st"]
#: the numeric column the house-prices test pipeline does NOT impute (scaled only)
HOUSE_NOT_IMPUTED = "LotArea"


def house_prices_frame() -> tuple[pd.DataFrame, pd.Series]:
    """data/house_prices.csv as training cleans it: empty categories become "" (missing)."""
    frame = pd.read_csv(HOUSE_PRICES_CSV)
    target = frame.pop(HOUSE_TARGET).astype(float)
    for name in HOUSE_CATEGORIES:
        frame[name] = frame[name].fillna("").astype(str)
    numeric = [c for c in frame.columns if c not in HOUSE_CATEGORIES]
    frame[numeric] = frame[numeric].astype(float)
    return frame, target


def build_house_prices_artifact(
    root: Path, *, signing_key: tuple[str, bytes] | None = None
) -> BuiltArtifact:
    """A regression pipeline on the real house_prices data, published per docs/artifact.md.

    Like training's mixed-type pipeline (median imputation + scaling for numbers,
    most-frequent imputation of "" + one-hot for categories) except that ``HOUSE_NOT_IMPUTED``
    is only scaled: the metadata marks every other feature ``imputed``. Rows with a missing
    ``HOUSE_NOT_IMPUTED`` are left out of the fit (its scaler cannot take NaN at predict time).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import OneHotEncoder

    frame, target = house_prices_frame()
    keep = frame[HOUSE_NOT_IMPUTED].notna()
    frame, target = frame[keep].reset_index(drop=True), target[keep].reset_index(drop=True)
    numeric = [c for c in frame.columns if c not in HOUSE_CATEGORIES]
    imputed_numeric = [c for c in numeric if c != HOUSE_NOT_IMPUTED]
    number_branch = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    )
    category_branch = Pipeline(
        [
            ("impute", SimpleImputer(missing_values="", strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", number_branch, imputed_numeric),
            ("not_imputed", StandardScaler(), [HOUSE_NOT_IMPUTED]),
            ("categorical", category_branch, HOUSE_CATEGORIES),
        ],
        sparse_threshold=0.0,
    )
    pipeline = Pipeline([("preprocess", preprocess), ("model", Ridge())])
    pipeline.fit(frame, target)
    feature_specs = [
        {
            "name": name,
            "type": "category" if name in HOUSE_CATEGORIES else "number",
            "categories": (sorted(set(frame[name]) - {""}) if name in HOUSE_CATEGORIES else None),
            "allow_unknown": name in HOUSE_CATEGORIES,
            "imputed": name != HOUSE_NOT_IMPUTED,
        }
        for name in frame.columns
    ]
    directory = dump_model(root, "house_prices", new_version(), pipeline)
    metadata = artifact_metadata(
        directory,
        trainer_class="CSVTrainer",
        task="regression",
        frame=frame,
        feature_specs=feature_specs,
        target=target,
        classes=None,
        metrics=one_candidate_metrics(
            "r2",
            {"r2": float(pipeline.score(frame, target))},
            name="ridge",
            estimator="Ridge",
            params={},
            cv_mean=0.0,
        ),
        source=str(HOUSE_PRICES_CSV.name),
        fingerprint=sha256_file(HOUSE_PRICES_CSV),
        signing_key=signing_key,
    )
    return publish(root, directory, metadata, signing_key=signing_key)
