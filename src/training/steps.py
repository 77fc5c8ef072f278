"""The workflow's step logic as plain functions (no Metaflow), so it can be tested directly.

`training_workflow.py` calls these from its Metaflow steps; `train_and_evaluate` chains them
in one process (tests, notebooks) and gives the same result as a workflow run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from src.training.base import Trainer
from src.training.config import CandidateConfig, TrainingConfig
from src.training.data_validation import ValidatedData, fingerprint
from src.training.errors import CandidateError
from src.training.estimators import resolve_estimator
from src.training.evaluation import Scored, cv_score_in_metric_units, select_best, to_json_scalar
from src.training.features import FeatureSpec, imputed_features
from src.training.metadata import RunInfo, build_draft
from src.training.metrics import METRICS
from src.training.onnx_export import OnnxResult, compile_onnx, export_onnx, not_exported
from src.training.publish import serialize_model
from src.training.quality_gate import GateResult, check_quality_gate
from src.training.reference_stats import feature_references, target_reference
from src.training.registry import get_trainer_class


def make_trainer(config: TrainingConfig) -> Trainer:
    """The registered trainer named by the config, bound to it."""
    return get_trainer_class(config.trainer)(config)


@dataclass(frozen=True)
class LoadedData:
    """Validated data plus its fingerprint and source label."""

    data: ValidatedData
    fingerprint: str
    source: str


def load_and_validate(trainer: Trainer) -> LoadedData:
    """Load the trainer's data and validate it (raises DataSource/DataValidation errors)."""
    data = trainer.validate_data(trainer.load_data())
    return LoadedData(data, fingerprint(data.frame), trainer.source_label)


@dataclass
class Split:
    """Train/test split of the validated data."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def split_data(trainer: Trainer, loaded: LoadedData) -> Split:
    """Seeded train/test split (stratified for classification)."""
    return Split(*trainer.split(loaded.data))


#: the fields of a candidate result copied unchanged into its metadata entry, in order
SUMMARY_FIELDS = ("name", "estimator", "params", "cv_mean", "cv_std")


@dataclass
class CandidateResult:
    """A cross-validated, refitted candidate."""

    name: str
    estimator: str
    params: dict[str, Any]
    cv_mean: float
    cv_std: float
    order: int
    fit_seconds: float
    model: Pipeline
    grid: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The metadata ``metrics.candidates`` entry."""
        entry = {name: getattr(self, name) for name in SUMMARY_FIELDS}
        return {**entry, "fit_seconds": round(self.fit_seconds, 3), "n_grid_points": len(self.grid)}


def _jsonable(value: Any) -> Any:
    value = to_json_scalar(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def train_candidate(
    trainer: Trainer,
    spec: FeatureSpec,
    candidate: CandidateConfig,
    X_train: pd.DataFrame,  # noqa: N803
    y_train: pd.Series,
) -> CandidateResult:
    """Grid-search one candidate with K-fold CV on the training split, then refit the best."""
    config = trainer.config
    metric = config.metric
    search = GridSearchCV(
        trainer.build_pipeline(spec, candidate),
        param_grid={f"model__{key}": list(values) for key, values in candidate.grid.items()},
        scoring=METRICS[metric].scorer,
        cv=trainer.cv_splitter(),
        refit=True,
        n_jobs=1,
        error_score="raise",
    )
    started = time.perf_counter()
    try:
        search.fit(X_train, y_train)
    except Exception as exc:  # any fit failure is reported against the candidate
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CandidateError(f"candidate {candidate.name!r} failed to fit: {first_line}") from exc
    elapsed = time.perf_counter() - started
    best = search.best_index_
    results = search.cv_results_
    best_grid = {key.removeprefix("model__"): value for key, value in search.best_params_.items()}
    grid = [
        {
            "params": _jsonable({k.removeprefix("model__"): v for k, v in params.items()}),
            "cv_mean": cv_score_in_metric_units(results["mean_test_score"][i], metric),
            "cv_std": float(results["std_test_score"][i]),
        }
        for i, params in enumerate(results["params"])
    ]
    return CandidateResult(
        name=candidate.name,
        estimator=resolve_estimator(candidate.estimator),
        params=_jsonable({**candidate.params, **best_grid}),
        cv_mean=cv_score_in_metric_units(results["mean_test_score"][best], metric),
        cv_std=float(results["std_test_score"][best]),
        order=[c.name for c in config.candidates].index(candidate.name),
        fit_seconds=elapsed,
        model=search.best_estimator_,
        grid=grid,
    )


def in_config_order(results: Iterable[CandidateResult]) -> list[CandidateResult]:
    """Candidate results in the order the config lists them (foreach branches join unordered)."""
    return sorted(results, key=lambda r: r.order)


def choose_best(results: list[CandidateResult], metric: str) -> CandidateResult:
    """The best candidate by CV score; ties go to the one listed first in the config
    (`select_best` breaks ties by config position, so ``results`` may come in any order)."""
    winner = select_best([Scored(r.name, r.cv_mean, r.order) for r in results], metric)
    return next(r for r in results if r.name == winner.name)


@dataclass
class Evaluation:
    """Everything the evaluate step produces."""

    test_metrics: dict[str, Any]
    gate: GateResult
    onnx: OnnxResult
    draft_metadata: dict[str, Any]
    predictions: list[Any]
    model_joblib: bytes


def evaluate_best(
    trainer: Trainer,
    loaded: LoadedData,
    split: Split,
    results: list[CandidateResult],
    best: CandidateResult,
    run: RunInfo,
) -> Evaluation:
    """Held-out metrics, the quality-gate verdict, ONNX export + parity, reference statistics
    and draft metadata. ``results`` are in config order (`in_config_order`).

    Every candidate's pipeline is compiled and parity-checked too (only the best one's graph
    is published): ``metrics.candidates[].onnx`` records the precision each would be served
    at, or why it would not be compiled."""
    config = trainer.config
    spec = loaded.data.spec
    model = best.model
    test_metrics = trainer.evaluate(model, split.X_test, split.y_test)
    candidates = [r.summary() for r in results]
    if config.export_onnx:
        onnx = export_onnx(model, spec, split.X_test, trainer.task)
        for entry, result in zip(candidates, results, strict=True):
            compiled = (
                onnx
                if result is best
                else compile_onnx(result.model, spec, split.X_test, trainer.task)
            )
            entry["onnx"] = compiled.summary()
    else:
        onnx = not_exported("disabled in the config (export_onnx: false)")
    gate = check_quality_gate(config, test_metrics)
    classes = list(model.classes_) if trainer.task == "classification" else None
    draft = build_draft(
        model_name=config.model_name,
        trainer_class=config.trainer,
        task=trainer.task,
        spec=spec,
        X_train=split.X_train,
        target=loaded.data.target,
        classes=classes,
        target_distribution=target_reference(split.y_train, trainer.task),
        selection_metric=config.metric,
        best_candidate=best.name,
        test_metrics=test_metrics,
        candidates=candidates,
        data={
            "source": loaded.source,
            "fingerprint": loaded.fingerprint,
            "n_rows": len(loaded.data.frame),
            "n_train": len(split.X_train),
            "n_test": len(split.X_test),
            "random_seed": config.random_seed,
            "test_size": config.test_size,
            "cv_folds": config.cv_folds,
        },
        reference=feature_references(split.X_train, spec),
        run=run,
        onnx_info=onnx.info,
        extra_versions=onnx.versions,
        quality_gate=gate.detail,
        imputed=imputed_features(model, spec),
    )
    predictions = [to_json_scalar(p) for p in model.predict(split.X_test)]
    return Evaluation(test_metrics, gate, onnx, draft, predictions, serialize_model(model))


@dataclass
class TrainingOutcome:
    """The result of `train_and_evaluate`."""

    loaded: LoadedData
    split: Split
    results: list[CandidateResult]
    best: CandidateResult
    evaluation: Evaluation


def train_and_evaluate(config: TrainingConfig, run: RunInfo | None = None) -> TrainingOutcome:
    """Every step up to (not including) the quality gate and publishing, in one process."""
    trainer = make_trainer(config)
    loaded = load_and_validate(trainer)
    split = split_data(trainer, loaded)
    results = [
        train_candidate(trainer, loaded.data.spec, cand, split.X_train, split.y_train)
        for cand in config.candidates
    ]
    best = choose_best(results, config.metric)
    run = run or RunInfo("local", "0")
    evaluation = evaluate_best(trainer, loaded, split, results, best, run)
    return TrainingOutcome(loaded, split, results, best, evaluation)
