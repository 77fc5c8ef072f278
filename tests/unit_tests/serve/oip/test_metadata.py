"""Server and model metadata, and the label datatype taken from the class labels."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from src.serve.oip.codec import label_datatype
from src.serve.oip.metadata import model_metadata, server_metadata


def test_server_metadata_announces_binary_tensor_data() -> None:
    assert server_metadata("1.2.3") == {
        "name": "mlops-toolset",
        "version": "1.2.3",
        "extensions": ["binary_tensor_data"],
    }


def test_classifier_metadata(iris_model) -> None:
    meta = model_metadata(iris_model)
    assert meta["name"] == "iris_classifier"
    assert meta["versions"] == [iris_model.version]
    assert meta["platform"] == iris_model.backend.name
    assert [i["name"] for i in meta["inputs"]] == list(iris_model.metadata.feature_names)
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert meta["outputs"][1] == {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]}
    assert orjson.loads(meta["parameters"]["classes"]) == ["setosa", "versicolor", "virginica"]


def test_regressor_metadata(house_model) -> None:
    meta = model_metadata(house_model)
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("area_sqm", "FP64"),
        ("rooms", "INT64"),
        ("district", "BYTES"),
    ]
    assert meta["outputs"] == [{"name": "label", "datatype": "FP64", "shape": [-1]}]
    assert meta["parameters"] == {"task": "regression"}


@pytest.mark.parametrize(
    ("classes", "datatype"),
    [
        (["a", "b"], "BYTES"),
        ([0, 1, 2], "INT64"),
        ([True, False], "BOOL"),
        ([0.5, 1], "FP64"),
        ([1, "b"], "BYTES"),
    ],
)
def test_label_datatype_follows_the_class_labels(classes: list[Any], datatype: str) -> None:
    model = SimpleNamespace(
        is_classifier=True, metadata=SimpleNamespace(target=SimpleNamespace(classes=classes))
    )
    assert label_datatype(model) == datatype  # type: ignore[arg-type]
