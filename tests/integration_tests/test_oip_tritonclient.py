"""Real service processes driven by a real Open Inference Protocol client, ``tritonclient``:
server and model readiness, metadata, inference with JSON and binary tensors in both input
layouts, for a classifier and a regressor, answers equal to in-process predictions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from src.serve.artifact import resolve
from src.serve.loaded_model import LoadedModel, build_loaded_model
from src.serve.settings import load_settings
from tests.artifact_factory import (
    BuiltArtifact,
    build_house_artifact,
    build_iris_artifact,
)
from tests.server_process import ServerPool, ServerProcess

pytestmark = pytest.mark.integration

API_KEY = "fake-oip-api-key-0123456789"  # pragma: allowlist secret
AUTH = {"Authorization": f"Bearer {API_KEY}"}
IRIS_ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.4, 1.3]])


def auth() -> dict[str, str]:
    """A fresh headers dict: tritonclient adds Inference-Header-Content-Length to the one
    it is given."""
    return dict(AUTH)


HOUSE_ROWS = [(80.5, 3, "north"), (120.0, 4, "east"), (55.0, 1, "south")]


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, BuiltArtifact, BuiltArtifact]:
    root = tmp_path_factory.mktemp("oip-artifacts")
    return root, build_iris_artifact(root), build_house_artifact(root)


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, published: tuple[Path, BuiltArtifact, BuiltArtifact]
) -> Iterator[dict[str, ServerProcess]]:
    """One service process serving both models (the classifier is the default one)."""
    root = published[0]
    with ServerPool(
        tmp_path_factory.mktemp("oip-servers"),
        ready_path="/health",
        API_KEYS=API_KEY,
        ALLOW_UNSIGNED="true",
        MODEL_POLL_SECONDS="0",
    ) as pool:
        server = pool(root, MODEL_NAMES="iris_classifier,house_prices")
        yield {"iris_classifier": server, "house_prices": server}


def in_process(root: Path, name: str) -> LoadedModel:
    """The same artifact loaded in this process, as the service loads it."""
    return build_loaded_model(
        resolve(root, name),
        load_settings(artifacts_dir=root, auth_disabled=True, allow_unsigned=True),
    )


def client_for(server: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.url.removeprefix("http://"))


def test_readiness_and_metadata(servers, published) -> None:
    iris = published[1]
    client = client_for(servers["iris_classifier"])
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris_classifier")
    assert client.is_model_ready("iris_classifier", iris.model_version)
    assert not client.is_model_ready("iris_classifier", "19990101T000000000000Z")
    assert client.is_model_ready("house_prices")  # the same process serves both
    assert not client.is_model_ready("no_such_model")
    server = client.get_server_metadata()
    assert "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata("iris_classifier", headers=auth())
    assert meta["versions"] == [iris.model_version]
    assert [i["name"] for i in meta["inputs"]] == [f["name"] for f in iris.metadata["features"]]
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
        ("label", "BYTES"),
        ("probabilities", "FP64"),
    ]
    house_meta = client_for(servers["house_prices"]).get_model_metadata(
        "house_prices", headers=auth()
    )
    assert [(i["name"], i["datatype"]) for i in house_meta["inputs"]] == [
        ("area_sqm", "FP64"),
        ("rooms", "INT64"),
        ("district", "BYTES"),
    ]
    assert house_meta["outputs"] == [{"name": "label", "datatype": "FP64", "shape": [-1]}]
    with pytest.raises(InferenceServerException) as denied:
        client.get_model_metadata("iris_classifier")
    assert denied.value.status() == "401"


def iris_expected(published) -> tuple[list[str], np.ndarray]:
    root, iris, _ = published
    model = in_process(root, "iris_classifier")
    predictions = model.backend.predict([tuple(r) for r in IRIS_ROWS.tolist()])
    classes = [str(c) for c in iris.metadata["target"]["classes"]]
    return [p.prediction for p in predictions], np.array(
        [[p.probabilities[c] for c in classes] for p in predictions]
    )


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_iris_matrix_layout(servers, published, binary) -> None:
    tensor = triton.InferInput("input", list(IRIS_ROWS.shape), "FP64")
    tensor.set_data_from_numpy(IRIS_ROWS, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput(name, binary_data=binary) for name in ("label", "probabilities")
    ]
    result = client_for(servers["iris_classifier"]).infer(
        "iris_classifier", [tensor], outputs=outputs, headers=auth(), request_id="m-1"
    )
    labels, proba = iris_expected(published)
    assert [
        v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").tolist()
    ] == labels
    assert result.as_numpy("probabilities").tolist() == proba.tolist()
    assert result.get_response()["id"] == "m-1"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_iris_per_feature_layout(servers, published, binary) -> None:
    _, iris, _ = published
    inputs = []
    for i, feature in enumerate(iris.metadata["features"]):
        tensor = triton.InferInput(feature["name"], [len(IRIS_ROWS), 1], "FP64")
        tensor.set_data_from_numpy(IRIS_ROWS[:, i : i + 1], binary_data=binary)
        inputs.append(tensor)
    # no outputs named: every output, as binary data (tritonclient's default)
    result = client_for(servers["iris_classifier"]).infer(
        "iris_classifier", inputs, headers=auth(), model_version=iris.model_version
    )
    labels, proba = iris_expected(published)
    assert [v.decode() for v in result.as_numpy("label").tolist()] == labels
    assert result.as_numpy("probabilities").tolist() == proba.tolist()
    assert result.get_response()["model_version"] == iris.model_version


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_regressor_per_feature_layout(servers, published, binary) -> None:
    root = published[0]
    columns = list(zip(*HOUSE_ROWS, strict=True))
    arrays = [
        np.array(columns[0], dtype=np.float64),
        np.array(columns[1], dtype=np.int64),
        np.array(columns[2], dtype=np.object_),
    ]
    inputs = []
    for name, datatype, array in zip(
        ("area_sqm", "rooms", "district"), ("FP64", "INT64", "BYTES"), arrays, strict=True
    ):
        tensor = triton.InferInput(name, [len(HOUSE_ROWS)], datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput("label", binary_data=binary)]
    result = client_for(servers["house_prices"]).infer(
        "house_prices", inputs, outputs=outputs, headers=auth()
    )
    expected = [p.prediction for p in in_process(root, "house_prices").backend.predict(HOUSE_ROWS)]
    assert result.as_numpy("label").tolist() == expected


def test_regressor_refuses_matrix_and_unknown_category(servers) -> None:
    client = client_for(servers["house_prices"])
    tensor = triton.InferInput("district", [1], "BYTES")
    tensor.set_data_from_numpy(np.array(["west"], dtype=np.object_))
    others = [triton.InferInput("area_sqm", [1], "FP64"), triton.InferInput("rooms", [1], "INT64")]
    others[0].set_data_from_numpy(np.array([80.0]))
    others[1].set_data_from_numpy(np.array([3], dtype=np.int64))
    with pytest.raises(InferenceServerException) as refused:
        client.infer("house_prices", [*others, tensor], headers=auth())
    assert refused.value.status() == "400"
    assert "row[0].district" in refused.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("no_such_model", [tensor], headers=auth())
    assert unknown.value.status() == "404"


def test_our_routes_answer_like_the_protocol_for_both_models(servers, published) -> None:
    """The same process, through our own /models/{name}/predict/batch routes."""
    root = published[0]
    server = servers["iris_classifier"]
    records = [dict(zip(("area_sqm", "rooms", "district"), row, strict=True)) for row in HOUSE_ROWS]
    answer = httpx.post(
        f"{server.url}/models/house_prices/predict/batch", json={"records": records}, headers=AUTH
    )
    assert answer.status_code == 200, answer.text
    expected = [p.prediction for p in in_process(root, "house_prices").backend.predict(HOUSE_ROWS)]
    assert [p["prediction"] for p in answer.json()["predictions"]] == expected
    iris_records = [
        dict(zip(("sepal_length", "sepal_width", "petal_length", "petal_width"), r, strict=True))
        for r in IRIS_ROWS.tolist()
    ]
    answer = httpx.post(
        f"{server.url}/models/iris_classifier/predict/batch",
        json={"records": iris_records},
        headers=AUTH,
    )
    assert answer.status_code == 200, answer.text
    labels, _ = iris_expected(published)
    assert [p["prediction"] for p in answer.json()["predictions"]] == labels
