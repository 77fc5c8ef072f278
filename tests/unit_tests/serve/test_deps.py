"""Route dependencies: the other routes read and check the key exactly as the data plane does,
and take the pinned model from it."""

from __future__ import annotations

import pytest

from tests.unit_tests.serve.helpers import ADMIN_KEY, API_KEY, AppClient

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]

KEY_HEADERS = [
    {},
    {"Authorization": f"Bearer {API_KEY}"},
    {"Authorization": f"bearer   {API_KEY}  "},
    {"Authorization": f"Basic {API_KEY}"},
    {"Authorization": f"Basic {API_KEY}", "X-API-Key": API_KEY},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer wrong-key", "X-API-Key": API_KEY},
    {"X-API-Key": API_KEY},
    {"X-API-Key": ""},
    {"X-API-Key": ADMIN_KEY},
]


@pytest.mark.parametrize("headers", KEY_HEADERS)
def test_routes_and_the_data_plane_accept_the_same_keys(
    client: AppClient, headers: dict[str, str]
) -> None:
    predict = client.post("/predict", json={}, headers=headers).status_code
    model = client.get("/model", headers=headers).status_code
    # 422: the key passed and the (empty) record was refused; /model then answers 200.
    assert {401: 401, 403: 403, 422: 200}[predict] == model


def test_admin_routes_need_an_admin_key(client: AppClient) -> None:
    assert client.post("/admin/reload", headers={"X-API-Key": API_KEY}).status_code == 403
    assert client.post("/admin/reload", headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_the_current_model_pins_its_version_for_the_response(client: AppClient) -> None:
    response = client.get("/model", headers={"X-API-Key": API_KEY})
    assert response.headers["x-model-version"] == response.json()["model_version"]
