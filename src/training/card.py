"""Content of the run's report card: candidates, test metrics and a confusion-matrix or
residual plot.

The blocks here are plain data (no Metaflow import); `training_workflow.py` turns them into
``metaflow.cards`` components. Plots are drawn with matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MarkdownBlock:
    """A paragraph of Markdown."""

    text: str


@dataclass(frozen=True)
class TableBlock:
    """A table with a header row."""

    headers: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class ImageBlock:
    """A PNG image with a caption."""

    png: bytes
    label: str


Block = MarkdownBlock | TableBlock | ImageBlock


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _figure_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def confusion_matrix_png(labels: Sequence[Any], matrix: Sequence[Sequence[int]]) -> bytes:
    """A labelled confusion-matrix heatmap as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(3.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(labels))
    ax.set_xticks(list(ticks), [str(label) for label in labels], rotation=45, ha="right")
    ax.set_yticks(list(ticks), [str(label) for label in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if peak and count > peak / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour)
    ax.set_title("Confusion matrix (held-out test set)")
    return _figure_png(fig)


def residual_plot_png(y_true: Sequence[float], y_pred: Sequence[float]) -> bytes:
    """Residuals (true - predicted) against predictions, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    residuals = [float(t) - float(p) for t, p in zip(y_true, y_pred, strict=True)]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter([float(p) for p in y_pred], residuals, s=12, alpha=0.7)
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title("Residuals (held-out test set)")
    return _figure_png(fig)


def build_report(
    metadata: dict[str, Any], y_test: Sequence[Any], predictions: Sequence[Any]
) -> list[Block]:
    """The card content for a finished evaluation (``metadata`` is the draft metadata)."""
    metrics = metadata["metrics"]
    selection = metrics["selection_metric"]
    best = metrics["best_candidate"]
    data = metadata["data"]
    blocks: list[Block] = [
        MarkdownBlock(
            f"# {metadata['model_name']} ({metadata['trainer_class']}, {metadata['task']})\n\n"
            f"Data `{data['source']}`: {data['n_rows']} rows ({data['n_train']} train / "
            f"{data['n_test']} test), fingerprint `{data['fingerprint'][:16]}…`. "
            f"Run `{metadata['run']['pathspec']}`."
        ),
        MarkdownBlock(
            f"## Candidates\nCross-validated {selection} on the training split "
            f"({data.get('cv_folds', '?')} folds); the best is marked."
        ),
        TableBlock(
            ["candidate", "estimator", "params", f"cv {selection} mean", "cv std", "selected"],
            [
                [
                    c["name"],
                    c["estimator"].rsplit(".", 1)[-1],
                    ", ".join(f"{k}={v}" for k, v in c["params"].items()) or "defaults",
                    _fmt(c["cv_mean"]),
                    _fmt(c["cv_std"]),
                    "yes" if c["name"] == best else "",
                ]
                for c in metrics["candidates"]
            ],
        ),
    ]
    test = metrics["test"]
    scalar = [(k, v) for k, v in test.items() if isinstance(v, int | float) and k != "n_test"]
    blocks.append(MarkdownBlock(f"## Held-out test metrics ({test.get('n_test', '?')} rows)"))
    blocks.append(TableBlock(["metric", "value"], [[k, _fmt(v)] for k, v in scalar]))
    gate = metrics.get("quality_gate")
    if gate:
        bound = (
            f">= {gate['min_score']}"
            if gate["min_score"] is not None
            else f"<= {gate['max_score']}"
        )
        verdict = "passed" if gate["passed"] else "FAILED (nothing will be published)"
        blocks.append(MarkdownBlock(f"Quality gate: test {gate['metric']} {bound}: **{verdict}**."))
    if metadata["task"] == "classification":
        per_class = test["per_class"]
        blocks.append(MarkdownBlock("## Per-class report"))
        blocks.append(
            TableBlock(
                ["class", "precision", "recall", "f1", "support"],
                [
                    [label, _fmt(r["precision"]), _fmt(r["recall"]), _fmt(r["f1"]), r["support"]]
                    for label, r in per_class.items()
                ],
            )
        )
        cm = test["confusion_matrix"]
        blocks.append(
            ImageBlock(confusion_matrix_png(cm["labels"], cm["matrix"]), "Confusion matrix")
        )
    else:
        blocks.append(ImageBlock(residual_plot_png(list(y_test), list(predictions)), "Residuals"))
    onnx = metadata["onnx"]
    if onnx.get("path"):
        parity = onnx["parity"]
        figure = parity.get("max_abs_prob_diff", parity.get("max_rel_error"))
        blocks.append(
            MarkdownBlock(
                f"ONNX: exported ({onnx['converter']}, opset {onnx['opset']}), parity on "
                f"{parity['n_rows']} test rows: max difference {figure}."
            )
        )
    else:
        blocks.append(MarkdownBlock(f"ONNX: not exported: {onnx['reason']}"))
    return blocks
