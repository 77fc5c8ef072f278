"""The trainer registry: register, refuse duplicates, fail unknown names with the known list."""

from __future__ import annotations

import pandas as pd
import pytest

from src.training.base import Trainer
from src.training.errors import DuplicateTrainerError, UnknownTrainerError
from src.training.registry import (
    get_trainer_class,
    known_trainers,
    register_workflow,
    unregister_workflow,
)


class _Tiny(Trainer):
    fixed_task = "classification"
    builtin_source = "test:tiny"

    def load_data(self) -> pd.DataFrame:
        return pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})


@pytest.fixture
def cleanup():
    names: list[str] = []
    yield names
    for name in names:
        unregister_workflow(name)


def test_builtin_trainers_are_registered():
    assert {"IrisClassifier", "CSVTrainer", "DiabetesRegressor"} <= set(known_trainers())
    assert get_trainer_class("IrisClassifier").__name__ == "IrisClassifier"


def test_register_by_class_name_and_custom_name(cleanup):
    cleanup.extend(["_Tiny", "TinyAlias"])
    assert register_workflow(_Tiny) is _Tiny
    assert get_trainer_class("_Tiny") is _Tiny
    register_workflow(name="TinyAlias")(_Tiny)
    assert get_trainer_class("TinyAlias") is _Tiny
    assert {"_Tiny", "TinyAlias"} <= set(known_trainers())


def test_registering_the_same_class_twice_is_harmless(cleanup):
    cleanup.append("_Tiny")
    register_workflow(_Tiny)
    register_workflow(_Tiny)
    assert get_trainer_class("_Tiny") is _Tiny


def test_duplicate_name_from_another_class_is_refused(cleanup):
    cleanup.append("IrisClassifierTwin")

    @register_workflow(name="IrisClassifierTwin")
    class First(_Tiny):
        pass

    with pytest.raises(DuplicateTrainerError, match=r"IrisClassifierTwin.*already registered"):

        @register_workflow(name="IrisClassifierTwin")
        class Second(_Tiny):
            pass

    assert get_trainer_class("IrisClassifierTwin") is First


def test_builtin_name_cannot_be_taken_over():
    with pytest.raises(DuplicateTrainerError, match="IrisClassifier"):

        @register_workflow(name="IrisClassifier")
        class Impostor(_Tiny):
            pass


def test_unknown_trainer_lists_the_known_ones():
    with pytest.raises(UnknownTrainerError) as info:
        get_trainer_class("NoSuchTrainer")
    message = str(info.value)
    assert message.startswith("config error: trainer: unknown trainer 'NoSuchTrainer'")
    for known in ("CSVTrainer", "DiabetesRegressor", "IrisClassifier"):
        assert known in message


def test_only_trainer_subclasses_can_register():
    with pytest.raises(TypeError, match="not a subclass"):
        register_workflow(dict)  # type: ignore[arg-type]
