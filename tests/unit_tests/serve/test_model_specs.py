"""MODEL_NAMES entries: names, aliases, '*', and the default model."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.serve.model_specs import ModelSpec, parse_model_entry, parse_model_names
from src.serve.settings import SettingsError
from tests.unit_tests.serve.helpers import make_settings


def test_an_entry_is_a_name_or_a_name_at_an_alias() -> None:
    assert parse_model_entry("iris_classifier") == ModelSpec("iris_classifier")
    assert parse_model_entry(" house-prices@champion ") == ModelSpec("house-prices", "champion")
    assert ModelSpec("m", "champion").follows == "alias:champion"
    assert ModelSpec("m", None, "v1").follows == "version:v1"
    assert ModelSpec("m").follows == "LATEST"


@pytest.mark.parametrize("entry", ["Iris", "../x", "iris@", "iris@Champion", "iris@1st", ""])
def test_bad_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=r"model name|alias"):
        parse_model_entry(entry)


def test_a_model_named_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="named twice"):
        parse_model_names(["iris", "iris@champion"])


def test_star_is_remembered_not_a_model() -> None:
    assert parse_model_names(["a", "*", "b@x"]) == ([ModelSpec("a"), ModelSpec("b", "x")], True)


def test_settings_order_and_default(clean_env: pytest.MonkeyPatch, artifacts: Path) -> None:
    settings = make_settings(artifacts, model_names="house_prices@champion, iris_classifier")
    assert [s.name for s in settings.model_specs()] == ["house_prices", "iris_classifier"]
    assert settings.model_specs()[0].alias == "champion"
    assert not settings.serve_all_models
    only_default = make_settings(artifacts, model_version="v1")
    assert only_default.model_specs() == [ModelSpec("iris_classifier", None, "v1")]


def test_star_first_keeps_model_name_as_the_default(
    clean_env: pytest.MonkeyPatch, artifacts: Path
) -> None:
    settings = make_settings(artifacts, model_names="*", model_name="house_prices")
    assert settings.model_specs() == [ModelSpec("house_prices")]
    assert settings.serve_all_models


def test_bad_model_names_setting_is_one_clear_error(
    clean_env: pytest.MonkeyPatch, artifacts: Path
) -> None:
    clean_env.setenv("MODEL_NAMES", "iris,Bad Name")
    with pytest.raises(SettingsError, match="MODEL_NAMES"):
        make_settings(artifacts)
