"""Back to training: the prediction log joined with its feedback, as a labelled CSV.

    python -m src.serve.predlog.export --log-dir prediction_log --model-name iris_classifier \
        --output labelled.csv [--model-version <version>]

One row per logged prediction (the first record per request id) that has joined feedback:
the feature columns in the model's order, then the target column named as in the model's
metadata, holding the ground truth (never the prediction). The generic CSV trainer reads it
by config alone (``src/training/configs/iris_from_feedback.yaml``). Records logged with
``PREDICTION_LOG_FEATURES=false`` have no features and are skipped. Errors print one line
starting ``export: error:`` and exit 2.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from src.serve.predlog.index import FeedbackIndex
from src.serve.predlog.records import MODELS_DIR, read_log


class ExportError(Exception):
    """Nothing sensible to export (the message says why)."""


def model_descriptions(log_dir: Path, model_name: str, version: str | None) -> list[dict]:
    """The logged versions' descriptions, oldest version first."""
    directory = log_dir / MODELS_DIR / model_name
    paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if version is not None:
        paths = [p for p in paths if p.stem == version]
    if not paths:
        which = f"version {version} of " if version else ""
        raise ExportError(f"no predictions of {which}model {model_name!r} in {log_dir}")
    return [orjson.loads(p.read_bytes()) for p in paths]


def export_labelled(
    log_dir: Path, model_name: str, output: Path, version: str | None = None
) -> dict[str, Any]:
    """Write the labelled CSV; returns counts (logged, labelled, without features)."""
    descriptions = model_descriptions(log_dir, model_name, version)
    features: list[str] = descriptions[-1]["features"]
    target: str = descriptions[-1]["target"]
    versions = {d["model_version"] for d in descriptions}
    records: dict[str, dict[str, Any]] = {}
    without_features = 0
    for record in read_log(log_dir):
        if record.get("model_name") != model_name or record.get("model_version") not in versions:
            continue
        if not isinstance(record.get("features"), dict):
            without_features += 1
            continue
        records.setdefault(str(record["request_id"]), record)
    index = FeedbackIndex(log_dir)
    try:
        truths = index.joined_truths(list(records))
    finally:
        index.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with output.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*features, target])
        for request_id, record in records.items():
            if request_id not in truths:
                continue
            values = record["features"]
            writer.writerow([_cell(values.get(name)) for name in features] + [truths[request_id]])
            written += 1
    return {
        "logged": len(records),
        "labelled": written,
        "without_features": without_features,
        "versions": sorted(versions),
        "target": target,
    }


def _cell(value: Any) -> Any:
    return "" if value is None else value


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m src.serve.predlog.export",
        description="Turn the prediction log and its feedback into a labelled CSV.",
    )
    parser.add_argument("--log-dir", type=Path, required=True, help="PREDICTION_LOG_DIR")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model-version", help="only this version (default: every one)")
    parser.add_argument("--output", type=Path, required=True, help="the CSV to write")
    args = parser.parse_args(argv)
    try:
        counts = export_labelled(args.log_dir, args.model_name, args.output, args.model_version)
    except (ExportError, OSError, orjson.JSONDecodeError, KeyError) as exc:
        sys.stderr.write(f"export: error: {exc}\n")
        return 2
    print(
        f"export: {counts['labelled']} labelled rows of {counts['logged']} logged predictions "
        f"of {args.model_name} ({len(counts['versions'])} version(s)), target column "
        f"{counts['target']!r} -> {args.output}"
    )
    if counts["without_features"]:
        print(f"export: {counts['without_features']} records without features skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
