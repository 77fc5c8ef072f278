"""The report page (report/html_page.py): self-contained, complete, escaped."""

from __future__ import annotations

import re

from src.serve.monitoring.drift import Thresholds
from src.serve.monitoring.report.analysis import analyse
from src.serve.monitoring.report.html_page import histogram_svg, render_html
from src.serve.monitoring.report.inputs import ProductionData
from tests.artifact_factory import IRIS_FEATURES
from tests.unit_tests.serve.monitoring.helpers import iris_traffic

THRESHOLDS = Thresholds(warn=0.1, drift=0.25, min_samples=200)


def page(metadata, *, n=300, predictions=True, warnings=(), **traffic) -> str:
    rows, labels = iris_traffic(n, seed=21, **traffic)
    data = ProductionData(
        rows.tolist(), list(labels) if predictions else None, "production.csv", list(warnings)
    )
    return render_html(analyse(metadata, data, THRESHOLDS), generated_at="2026-12-03T00:00:00")


def test_the_page_is_self_contained_and_has_every_section(iris_metadata):
    document = page(iris_metadata, shift={"petal_length": 3.0})
    assert document.startswith("<!DOCTYPE html>")
    for name in IRIS_FEATURES:
        assert f'data-feature="{name}"' in document
    assert document.count('<svg class="histogram"') == len(IRIS_FEATURES) + 1  # + predictions
    assert 'id="psi-table"' in document
    assert 'id="quality-table"' in document
    assert 'data-feature="petal_length" data-status="drift"' in document
    assert "Overall: drift — 1 drifted" in document
    assert "generated 2026-12-03T00:00:00" in document
    assert "Content-Security-Policy" in document
    # self-contained: nothing fetched, no script
    assert "<script" not in document
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", document)


def test_without_predictions_the_page_says_how_to_add_them(iris_metadata):
    document = page(iris_metadata, predictions=False)
    assert document.count('<svg class="histogram"') == len(IRIS_FEATURES)
    assert "No <code>prediction</code> column in the input" in document


def test_input_warnings_are_listed(iris_metadata):
    document = page(iris_metadata, warnings=["3 value(s) of 'x' are not numbers"])
    assert 'id="input-warnings"' in document
    assert "3 value(s) of &#x27;x&#x27; are not numbers" in document


def test_names_from_metadata_are_html_escaped(iris_metadata):
    hostile = '<img src=x onerror="alert(1)">'
    iris_metadata["features"][0]["name"] = hostile
    iris_metadata["reference"][hostile] = iris_metadata["reference"].pop("sepal_length")
    document = page(iris_metadata, n=50)
    assert hostile not in document
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in document


def test_categorical_bins_and_regression_predictions_are_drawn(mixed_regression_metadata):
    rows, _ = iris_traffic(300, seed=24)
    data = ProductionData([[*row, "mauve"] for row in rows.tolist()], [0.5] * 300, "p.csv")
    document = render_html(analyse(mixed_regression_metadata, data, THRESHOLDS))
    assert "__unknown__" in document
    assert "Predicted values" in document


def test_histogram_bars_scale_to_a_round_axis():
    svg = histogram_svg(["a", "b"], [0.5, 0.5], [0.3, 0.7], "x & y")
    assert svg.startswith('<svg class="histogram"')
    assert 'aria-label="x &amp; y"' in svg
    assert svg.count('class="bar-reference"') == 2
    assert svg.count('class="bar-current"') == 2
    assert ">80%</text>" in svg  # 0.7 rounds up to an 80% top in 20% steps
    assert "a: current 30.0%" in svg
