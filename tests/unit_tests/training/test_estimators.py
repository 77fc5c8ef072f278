"""Which estimators get a scaler in front: the one decision of preprocessing per family."""

from __future__ import annotations

import pytest

from src.training.estimators import ALLOWED_ESTIMATORS, TREE_BASED, scales_numeric_features

TREES = [
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
]


@pytest.mark.parametrize("name", TREES)
def test_tree_based_estimators_get_no_scaler(name: str) -> None:
    assert not scales_numeric_features(name)
    assert not scales_numeric_features(ALLOWED_ESTIMATORS[name])  # the dotted path too


@pytest.mark.parametrize("name", sorted(set(ALLOWED_ESTIMATORS) - set(TREES)))
def test_every_other_estimator_is_scaled(name: str) -> None:
    assert scales_numeric_features(name)
    assert scales_numeric_features(ALLOWED_ESTIMATORS[name])


def test_every_tree_based_name_is_on_the_allow_list() -> None:
    assert set(TREES) == TREE_BASED
    assert set(ALLOWED_ESTIMATORS) >= TREE_BASED
