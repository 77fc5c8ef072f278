"""The report card shows candidates, test metrics and a confusion matrix or residual plot."""

from __future__ import annotations

from src.training.card import ImageBlock, MarkdownBlock, TableBlock, build_report
from src.training.config_loader import load_config
from src.training.steps import train_and_evaluate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def texts(blocks):
    return "\n".join(b.text for b in blocks if isinstance(b, MarkdownBlock))


def test_classification_card(make_config):
    outcome = train_and_evaluate(make_config())
    evaluation = outcome.evaluation
    blocks = build_report(
        evaluation.draft_metadata, list(outcome.split.y_test), evaluation.predictions
    )
    tables = [b for b in blocks if isinstance(b, TableBlock)]
    candidates = tables[0]
    assert candidates.headers[0] == "candidate"
    assert [row[0] for row in candidates.rows] == ["logistic_regression", "knn"]
    assert sum(row[-1] == "yes" for row in candidates.rows) == 1
    metrics = dict(tables[1].rows)
    assert {"accuracy", "f1_macro"} <= set(metrics)
    per_class = tables[2]
    assert [row[0] for row in per_class.rows] == ["setosa", "versicolor", "virginica"]
    images = [b for b in blocks if isinstance(b, ImageBlock)]
    assert len(images) == 1
    assert images[0].label == "Confusion matrix"
    assert images[0].png.startswith(PNG_MAGIC)
    assert "Quality gate" in texts(blocks)
    assert "ONNX: exported" in texts(blocks)


def test_regression_card_has_a_residual_plot():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    outcome = train_and_evaluate(load_config(repo / "src/training/configs/diabetes.yaml"))
    evaluation = outcome.evaluation
    blocks = build_report(
        evaluation.draft_metadata, list(outcome.split.y_test), evaluation.predictions
    )
    images = [b for b in blocks if isinstance(b, ImageBlock)]
    assert [i.label for i in images] == ["Residuals"]
    assert images[0].png.startswith(PNG_MAGIC)
    metrics = dict(
        next(b for b in blocks if isinstance(b, TableBlock) and b.headers[0] == "metric").rows
    )
    assert {"rmse", "mae", "r2"} <= set(metrics)
