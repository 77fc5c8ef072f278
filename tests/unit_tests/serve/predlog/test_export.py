"""The labelled CSV: features in the model's order, the ground truth as the target."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson

from src.serve.predlog.export import main
from src.serve.predlog.index import FeedbackIndex, FeedbackItem
from src.serve.predlog.records import model_description_path
from src.serve.predlog.segments import SegmentWriter

FEATURES = ["b", "a"]


def write_log(log_dir: Path, records: list[dict]) -> None:
    description = model_description_path(log_dir, "m", "v1")
    description.parent.mkdir(parents=True)
    description.write_bytes(
        orjson.dumps(
            {
                "model_name": "m",
                "model_version": "v1",
                "task": "classification",
                "features": FEATURES,
                "target": "kind",
                "classes": None,
                "test_metrics": {},
            }
        )
    )
    segments = SegmentWriter(log_dir, segment_bytes=1 << 20, segment_seconds=3600,
                             max_bytes=1 << 30)  # fmt: skip
    for r in records:
        segments.append(orjson.dumps(r) + b"\n", r["request_id"])
    segments.close()
    index = FeedbackIndex(log_dir)
    index.add_feedback([FeedbackItem("r1", "label", "y"), FeedbackItem("r3", "label", "x")])
    index.close()


def record(request_id: str, **features: float) -> dict:
    return {"request_id": request_id, "model_name": "m", "model_version": "v1",
            "features": features, "prediction": "x"}  # fmt: skip


def test_only_labelled_predictions_with_features_are_exported(tmp_path: Path, capsys) -> None:
    log_dir, output = tmp_path / "log", tmp_path / "out.csv"
    no_features = {"request_id": "r3", "model_name": "m", "model_version": "v1", "prediction": "x"}
    write_log(log_dir, [record("r1", a=1.0, b=2.0), record("r2", a=3.0, b=4.0), no_features])
    argv = ["--log-dir", str(log_dir), "--model-name", "m", "--output", str(output)]
    assert main(argv) == 0
    with output.open() as handle:
        assert list(csv.reader(handle)) == [["b", "a", "kind"], ["2.0", "1.0", "y"]]
    out = capsys.readouterr().out
    assert "1 labelled rows of 2 logged predictions" in out
    assert "1 records without features skipped" in out


def test_an_unknown_model_exits_2(tmp_path: Path, capsys) -> None:
    argv = ["--log-dir", str(tmp_path), "--model-name", "nope", "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("export: error: no predictions of model 'nope'")
