"""The report command: find the model's metadata, read the input, analyse, write HTML.

``metadata.json`` is found and validated with the service's artifact resolver
(:func:`src.serve.artifact.resolve` and :func:`~src.serve.artifact.read_metadata`: the same
version rules and metadata checks as the service); the model itself is never deserialised.
Exit status: 0 written, 1 written but ``--fail-on-drift`` and a feature drifted, 2 error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src.serve.artifact import ArtifactRef, read_metadata, resolve
from src.serve.errors import ArtifactError
from src.serve.monitoring.config import default_thresholds
from src.serve.monitoring.drift import STATUS_DRIFT, MonitoringError, MonitorSpec, Thresholds
from src.serve.monitoring.report.analysis import analyse
from src.serve.monitoring.report.html_page import render_html
from src.serve.monitoring.report.inputs import read_input


def find_model(args: argparse.Namespace) -> ArtifactRef:
    """The version directory named by ``--model-dir``, or resolved under ``--artifacts-dir``."""
    if args.model_dir is not None:
        directory = args.model_dir.resolve()
        return resolve(directory.parent.parent, directory.parent.name, directory.name)
    return resolve(args.artifacts_dir, args.model_name, args.model_version)


def load_metadata(ref: ArtifactRef) -> dict[str, Any]:
    """The version's validated ``metadata.json``, checked to be usable by the monitor."""
    _, raw = read_metadata(ref)
    MonitorSpec.from_metadata(raw)  # raises a clear MonitoringError when unusable
    return raw


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (threshold defaults: the service's default settings)."""
    parser = argparse.ArgumentParser(
        prog="python -m src.serve.monitoring.report",
        description="Compare production inputs with a model's training reference and write a "
        "self-contained HTML drift and data-quality report.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", type=Path, help="artifacts/<model>/<version> directory")
    where.add_argument("--artifacts-dir", type=Path, help="artifacts root (with --model-name)")
    parser.add_argument("--model-name", help="model name under --artifacts-dir")
    parser.add_argument("--model-version", help="version under --artifacts-dir (default LATEST)")
    parser.add_argument("--input", type=Path, required=True, help="CSV or JSON input")
    parser.add_argument("--format", choices=("auto", "csv", "json"), default="auto")
    parser.add_argument("--output", type=Path, required=True, help="HTML file to write")
    parser.add_argument("--json-output", type=Path, help="also write the analysis as JSON")
    defaults = default_thresholds()
    parser.add_argument("--warn", type=float, default=defaults.warn, help="PSI warn threshold")
    parser.add_argument("--drift", type=float, default=defaults.drift, help="PSI drift threshold")
    parser.add_argument(
        "--min-samples",
        type=int,
        default=defaults.min_samples,
        help="values a feature needs for a verdict (default %(default)s)",
    )
    parser.add_argument(
        "--fail-on-drift", action="store_true", help="exit 1 when any feature drifted"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.artifacts_dir is not None and not args.model_name:
        parser.error("--artifacts-dir needs --model-name")
    try:
        thresholds = Thresholds(warn=args.warn, drift=args.drift, min_samples=args.min_samples)
        metadata = load_metadata(find_model(args))
        data = read_input(args.input, MonitorSpec.from_metadata(metadata), args.format)
        result = analyse(metadata, data, thresholds)
        document = render_html(result)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(document, encoding="utf-8")
        if args.json_output:
            args.json_output.write_text(json.dumps(result, indent=2), encoding="utf-8")
    except (ArtifactError, MonitoringError) as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"report: error: cannot write output: {exc}", file=sys.stderr)
        return 2
    summary = ", ".join(
        f"{name}={f['psi']} ({f['status']})" for name, f in result["features"].items()
    )
    print(f"report: {len(data.rows)} rows vs {result['model_name']} {result['model_version']}")
    print(f"report: overall {result['status']}; PSI {summary}")
    if result["has_predictions"]:
        p = result["prediction"]
        print(f"report: predictions PSI={p['psi']} ({p['status']})")
    print(f"report: wrote {args.output}")
    if args.fail_on_drift and any(f["status"] == STATUS_DRIFT for f in result["features"].values()):
        return 1
    return 0
