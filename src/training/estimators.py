"""The allow-list of scikit-learn estimators a config may name, and hyperparameter checks.

Configs name estimators by short name (``LogisticRegression``) or dotted path
(``sklearn.linear_model.LogisticRegression``). Only classes listed here can be built, so a
config file can never import arbitrary code.
"""

from __future__ import annotations

import importlib
from typing import Any

from sklearn.base import BaseEstimator, is_classifier, is_regressor

from src.training.errors import ConfigError, UnknownEstimatorError

#: short name -> dotted class path
ALLOWED_ESTIMATORS: dict[str, str] = {
    # classification
    "LogisticRegression": "sklearn.linear_model.LogisticRegression",
    "RidgeClassifier": "sklearn.linear_model.RidgeClassifier",
    "SGDClassifier": "sklearn.linear_model.SGDClassifier",
    "KNeighborsClassifier": "sklearn.neighbors.KNeighborsClassifier",
    "SVC": "sklearn.svm.SVC",
    "LinearSVC": "sklearn.svm.LinearSVC",
    "DecisionTreeClassifier": "sklearn.tree.DecisionTreeClassifier",
    "RandomForestClassifier": "sklearn.ensemble.RandomForestClassifier",
    "ExtraTreesClassifier": "sklearn.ensemble.ExtraTreesClassifier",
    "GradientBoostingClassifier": "sklearn.ensemble.GradientBoostingClassifier",
    "HistGradientBoostingClassifier": "sklearn.ensemble.HistGradientBoostingClassifier",
    "GaussianNB": "sklearn.naive_bayes.GaussianNB",
    "DummyClassifier": "sklearn.dummy.DummyClassifier",
    # regression
    "LinearRegression": "sklearn.linear_model.LinearRegression",
    "Ridge": "sklearn.linear_model.Ridge",
    "Lasso": "sklearn.linear_model.Lasso",
    "ElasticNet": "sklearn.linear_model.ElasticNet",
    "SGDRegressor": "sklearn.linear_model.SGDRegressor",
    "KNeighborsRegressor": "sklearn.neighbors.KNeighborsRegressor",
    "SVR": "sklearn.svm.SVR",
    "LinearSVR": "sklearn.svm.LinearSVR",
    "DecisionTreeRegressor": "sklearn.tree.DecisionTreeRegressor",
    "RandomForestRegressor": "sklearn.ensemble.RandomForestRegressor",
    "ExtraTreesRegressor": "sklearn.ensemble.ExtraTreesRegressor",
    "GradientBoostingRegressor": "sklearn.ensemble.GradientBoostingRegressor",
    "HistGradientBoostingRegressor": "sklearn.ensemble.HistGradientBoostingRegressor",
    "DummyRegressor": "sklearn.dummy.DummyRegressor",
}
_BY_PATH = {path: short for short, path in ALLOWED_ESTIMATORS.items()}

#: tree-based estimators: their splits compare one feature with a threshold, so scaling changes
#: nothing they learn, and a float32 ONNX scaler in front of them rounds values across split
#: thresholds (the compiled graph then fails its parity check)
TREE_BASED: frozenset[str] = frozenset(
    {
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    }
)


def resolve_estimator(name: str, field: str = "estimator") -> str:
    """Return the dotted class path for ``name`` (short name or dotted path on the allow-list)."""
    if name in ALLOWED_ESTIMATORS:
        return ALLOWED_ESTIMATORS[name]
    if name in _BY_PATH:
        return name
    raise UnknownEstimatorError(
        field,
        f"unknown estimator {name!r}; allowed: {', '.join(sorted(ALLOWED_ESTIMATORS))}",
    )


def scales_numeric_features(name: str) -> bool:
    """Whether the preprocessing in front of estimator ``name`` standard-scales numbers.

    The one place that decides preprocessing per estimator family: every estimator gets
    imputation and one-hot encoding; all but the tree-based ones (`TREE_BASED`) also get a
    `StandardScaler`.
    """
    return _BY_PATH.get(resolve_estimator(name), name) not in TREE_BASED


def estimator_class(name: str) -> type[BaseEstimator]:
    """Import and return the allow-listed estimator class for ``name``."""
    path = resolve_estimator(name)
    module_name, _, class_name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def estimator_task(name: str) -> str:
    """``"classification"`` or ``"regression"`` for an allow-listed estimator."""
    instance = estimator_class(name)()
    if is_classifier(instance):
        return "classification"
    if is_regressor(instance):
        return "regression"
    raise UnknownEstimatorError("estimator", f"{name!r} is neither a classifier nor a regressor")


def build_estimator(name: str, params: dict[str, Any], seed: int | None = None) -> BaseEstimator:
    """Instantiate an allow-listed estimator with ``params``; seed it when it takes a seed."""
    cls = estimator_class(name)
    instance = cls()
    params = dict(params)
    if (
        seed is not None
        and "random_state" in instance.get_params()
        and "random_state" not in params
    ):
        params["random_state"] = seed
    return instance.set_params(**params)


def check_hyperparameters(name: str, params: dict[str, Any], field: str) -> None:
    """Raise `ConfigError` naming ``field.<param>`` for an unknown or invalid hyperparameter.

    Values are checked with scikit-learn's own parameter constraints, so e.g. ``C: -1`` fails
    here, before any data is loaded.
    """
    instance = estimator_class(name)()
    valid = instance.get_params(deep=False)
    for key, value in params.items():
        if key not in valid:
            raise ConfigError(
                f"{field}.{key}",
                f"{key!r} is not a hyperparameter of {type(instance).__name__}; "
                f"valid: {', '.join(sorted(valid))}",
            )
        probe = estimator_class(name)()
        try:
            probe.set_params(**{key: value})
            validate = getattr(probe, "_validate_params", None)
            if callable(validate):
                validate()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{field}.{key}", str(exc)) from None
