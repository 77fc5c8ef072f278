"""Offline drift report: production inputs vs the training reference, as one HTML file.

    python -m src.serve.monitoring.report --model-dir artifacts/iris_classifier/<version> \\
        --input production.csv --output report.html
    python -m src.serve.monitoring.report --artifacts-dir artifacts --model-name iris_classifier \\
        --input window.json --output report.html        # resolves artifacts/<name>/LATEST

Reads only ``metadata.json`` (the model itself is never deserialised). The input is

- a CSV with a header row naming every feature (extra columns are ignored, except an optional
  ``prediction`` column: predicted class labels or values, compared with the training target
  distribution). Empty cells and ``NA``/``NaN``/``null``/``None`` are missing values;
- or JSON: a window exported by the service (``GET /monitoring/window``, format
  ``mlops-monitoring-window`` v1, see :meth:`ModelMonitor.export_window`), a list of records
  (``[{"sepal_length": 5.1, ...}, ...]``) or a batch request body (``{"records": [...]}``).

The HTML is self-contained (inline CSS and SVG drawn here, no JavaScript, no external assets;
a Content-Security-Policy forbids loading any): a PSI table with statuses, a data-quality
table, and per-feature reference-vs-current histograms over the reference bins.
Exit status: 0 written, 1 written but ``--fail-on-drift`` and a feature drifted, 2 error.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from src.serve.monitoring.drift import (
    STATUS_DRIFT,
    MonitoringError,
    MonitorSpec,
    Thresholds,
)
from src.serve.monitoring.window import EXPORT_FORMAT, ModelMonitor

PREDICTION_COLUMN = "prediction"
MISSING_TOKENS = frozenset({"", "na", "nan", "null", "none", "n/a"})
_VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_INPUT_BYTES = 512 * 1024 * 1024
DASH = "&#8211;"  # shown for "not applicable"


@dataclass
class ProductionData:
    """Parsed input rows (feature order) with optional predictions and parse warnings."""

    rows: list[list[Any]]
    predictions: list[Any] | None
    source: str
    warnings: list[str] = field(default_factory=list)


# --- loading --------------------------------------------------------------------------------


def resolve_model_dir(artifacts_dir: Path, model_name: str, version: str | None = None) -> Path:
    """``artifacts/<name>/<version>``, the version defaulting to the ``LATEST`` pointer."""
    base = artifacts_dir / model_name
    if version is None:
        pointer = base / "LATEST"
        try:
            version = pointer.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MonitoringError(f"cannot read {pointer}: {exc.strerror or exc}") from None
    if not _VERSION_NAME.match(version):
        raise MonitoringError(f"invalid model version {version!r} (from {base / 'LATEST'})")
    return base / version


def load_metadata(model_dir: Path) -> dict[str, Any]:
    """Read and sanity-check ``<model_dir>/metadata.json``."""
    path = model_dir / "metadata.json"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MonitoringError(f"cannot read metadata {path}: {exc.strerror or exc}") from None
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MonitoringError(f"metadata {path} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise MonitoringError(f"metadata {path} must hold a JSON object")
    MonitorSpec.from_metadata(metadata)  # raises a clear MonitoringError when unusable
    return metadata


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise MonitoringError(f"input {path} is larger than {MAX_INPUT_BYTES} bytes")
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MonitoringError(f"cannot read input {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MonitoringError(f"input {path} is not UTF-8 text") from None


def _parse_cell(raw: Any, kind: str, column: str, bad: dict[str, int]) -> Any:
    """One input cell as the monitor wants it: float / category string / None (missing)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text.lower() in MISSING_TOKENS:
            return None
        if kind == "categorical":
            return text
        try:
            return float(text)
        except ValueError:
            bad[column] = bad.get(column, 0) + 1
            return None
    if kind == "categorical":
        return str(raw) if not isinstance(raw, bool) else str(raw).lower()
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        bad[column] = bad.get(column, 0) + 1
        return None
    value = float(raw)
    return None if math.isnan(value) else value


def _parse_prediction(raw: Any) -> Any:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in MISSING_TOKENS):
        return None
    return raw.strip() if isinstance(raw, str) else raw


def _records_to_data(
    records: Sequence[Mapping[str, Any]], spec: MonitorSpec, source: str
) -> ProductionData:
    if not records:
        raise MonitoringError(f"input {source} has no data rows")
    names = spec.feature_names
    present = set().union(*(r.keys() for r in records))
    missing = [n for n in names if n not in present]
    if missing:
        raise MonitoringError(
            f"input {source} lacks feature column(s) {missing}; "
            f"expected {names}, found {sorted(present)}"
        )
    kinds = [f.kind for f in spec.features]
    bad: dict[str, int] = {}
    rows = [
        [_parse_cell(r.get(n), k, n, bad) for n, k in zip(names, kinds, strict=True)]
        for r in records
    ]
    predictions = None
    if PREDICTION_COLUMN in present:
        predictions = [_parse_prediction(r.get(PREDICTION_COLUMN)) for r in records]
    warnings = [
        f"{count} value(s) of {name!r} are not numbers and were counted as missing"
        for name, count in bad.items()
    ]
    return ProductionData(rows, predictions, source, warnings)


def read_csv(path: Path, spec: MonitorSpec) -> ProductionData:
    """Parse a CSV with a header row (see the module docstring)."""
    text = _read_text(path)
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames:
        raise MonitoringError(f"input {path} is empty (no header row)")
    records = [
        r for r in reader if any((v or "").strip() for v in r.values() if isinstance(v, str))
    ]
    if not records:
        raise MonitoringError(f"input {path} has a header but no data rows")
    # Coerce the "restkey" list DictReader uses for overlong rows out of the way.
    cleaned = [{k: v for k, v in r.items() if isinstance(k, str)} for r in records]
    data = _records_to_data(cleaned, spec, str(path))
    return data


def read_json(path: Path, spec: MonitorSpec) -> ProductionData:
    """Parse an exported window, a list of records, or ``{"records": [...]}``."""
    try:
        document = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise MonitoringError(f"input {path} is not valid JSON: {exc}") from None
    if isinstance(document, Mapping) and document.get("format") == EXPORT_FORMAT:
        columns, rows = document.get("columns"), document.get("rows")
        if not isinstance(columns, list) or not isinstance(rows, list):
            raise MonitoringError(f"window export {path} lacks 'columns' and 'rows' lists")
        if any(not isinstance(r, list) or len(r) != len(columns) for r in rows):
            raise MonitoringError(f"window export {path}: every row needs {len(columns)} values")
        data = _records_to_data([dict(zip(columns, r, strict=True)) for r in rows], spec, str(path))
        exported = document.get("model_version")
        if exported and exported != spec.model_version:
            data.warnings.append(
                f"the window was exported for model version {exported}, "
                f"compared here with {spec.model_version}"
            )
        return data
    if isinstance(document, Mapping) and isinstance(document.get("records"), list):
        document = document["records"]
    if not isinstance(document, list) or not all(isinstance(r, Mapping) for r in document):
        raise MonitoringError(
            f"input {path}: expected a window export, a list of records or {{'records': [...]}}"
        )
    return _records_to_data(document, spec, str(path))


def read_input(path: Path, spec: MonitorSpec, fmt: str = "auto") -> ProductionData:
    """Parse ``path`` as CSV or JSON (``fmt`` = csv | json | auto by extension)."""
    if fmt == "auto":
        fmt = "json" if path.suffix.lower() in (".json", ".jsonl") else "csv"
    return read_json(path, spec) if fmt == "json" else read_csv(path, spec)


def analyse(
    metadata: Mapping[str, Any], data: ProductionData, thresholds: Thresholds
) -> dict[str, Any]:
    """The same snapshot the live monitor computes, over all input rows."""
    monitor = ModelMonitor(metadata, window=len(data.rows), thresholds=thresholds)
    predictions = data.predictions or [None] * len(data.rows)
    if data.predictions is not None and monitor.spec.task == "regression":
        bad: dict[str, int] = {}
        predictions = [_parse_cell(p, "numeric", PREDICTION_COLUMN, bad) for p in predictions]
        data.warnings += [
            f"{n} prediction(s) are not numbers and were ignored" for n in bad.values()
        ]
    monitor.observe_many(data.rows, predictions)
    result = monitor.snapshot(histograms=True, max_age=0)
    if result["window"]["rows_rejected"]:
        raise MonitoringError(f"{result['window']['rows_rejected']} input rows could not be read")
    result["has_predictions"] = data.predictions is not None
    result["source"] = data.source
    result["warnings"] = list(data.warnings)
    return result


# --- HTML -----------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;
background:#f5f6f8;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 .3rem}h2{font-size:1.2rem;margin:2rem 0 .6rem}
h3{font-size:1.05rem;margin:0 0 .4rem}
.meta{color:#566070;font-size:.9rem;margin:.2rem 0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:16px;margin:12px 0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92rem}
th,td{border-bottom:1px solid #e4e7ec;padding:6px 10px;text-align:left}
th{background:#eef1f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:.8rem;font-weight:600;
color:#fff}
.s-ok{background:#2e8540}.s-warn{background:#c77700}.s-drift{background:#c62828}
.s-insufficient_data,.s-no_reference{background:#7a8491}
.overall{font-size:1.1rem;padding:10px 14px;border-radius:8px;color:#fff;display:inline-block;
margin-top:.6rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(500px,1fr));gap:12px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;
vertical-align:middle}
.warnings{background:#fff8e1;border:1px solid #f0c36d;border-radius:8px;padding:8px 14px}
svg text{font-family:inherit}
footer{color:#566070;font-size:.85rem;margin-top:2rem}
"""
REFERENCE_COLOR = "#7b93c9"
CURRENT_COLOR = "#f08c4a"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return DASH
    if isinstance(value, float):
        if math.isnan(value):
            return DASH
        return f"{value:.{digits}g}"
    return _e(value)


def _badge(status: str) -> str:
    return f'<span class="badge s-{_e(status)}">{_e(status.replace("_", " "))}</span>'


def _axis(value: float) -> tuple[float, float]:
    """A round top for a fraction axis and its tick step (at most 5 steps, top <= 100%)."""
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25):
        if value <= step * 5:
            return max(step, math.ceil(value / step - 1e-9) * step), step
    return 1.0, 0.25


def histogram_svg(
    labels: Sequence[str], reference: Sequence[float], current: Sequence[float], title: str
) -> str:
    """Grouped bars (reference vs current fraction per bin) as an inline SVG element."""
    width, height = 520, 250
    left, right, top, bottom = 46, 10, 12, 78
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    peak, step = _axis(max([*reference, *current, 0.0]))
    group = plot_w / n
    bar = max(group * 0.38, 1.0)
    parts = [
        f'<svg class="histogram" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_e(title)}</title>",
    ]
    for i in range(round(peak / step) + 1):
        y = top + plot_h * (1 - i * step / peak)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="#e3e6eb" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#566070">{i * step:.0%}</text>'
        )
    for i, label in enumerate(labels):
        x0 = left + i * group + group * 0.1
        for j, (series, color, name) in enumerate(
            ((reference, REFERENCE_COLOR, "reference"), (current, CURRENT_COLOR, "current"))
        ):
            value = series[i] if i < len(series) else 0.0
            h = plot_h * value / peak
            x = x0 + j * bar
            parts.append(
                f'<rect class="bar-{name}" x="{x:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{_e(label)}: {name} {value:.1%}</title></rect>"
            )
        cx = left + (i + 0.5) * group
        short = label if len(label) <= 18 else label[:17] + "…"
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 12}" font-size="10" fill="#39424e" '
            f'text-anchor="end" transform="rotate(-40 {cx:.1f} {top + plot_h + 12})">'
            f"{_e(short)}</text>"
        )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="#8a94a3" stroke-width="1"/></svg>'
    )
    return "".join(parts)


def _legend() -> str:
    return (
        f'<p class="legend"><span style="background:{REFERENCE_COLOR}"></span>training reference'
        f'<span style="background:{CURRENT_COLOR}"></span>current input</p>'
    )


def render_html(result: Mapping[str, Any], *, generated_at: str | None = None) -> str:
    """The report as one self-contained HTML document."""
    generated_at = generated_at or datetime.now(UTC).isoformat(timespec="seconds")
    features: Mapping[str, Any] = result["features"]
    thresholds = result["thresholds"]
    status = result["status"]
    drifted, warned = result["drifted_features"], result["warned_features"]
    title = f"Drift report: {result['model_name']} {result['model_version']}"
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        '<header id="report-header"><h1>Drift and data-quality report</h1>',
        f'<p class="meta">Model <b>{_e(result["model_name"])}</b> version '
        f"<b>{_e(result['model_version'])}</b> · input <code>{_e(result['source'])}</code> · "
        f"{result['window']['rows']} rows · generated {_e(generated_at)}</p>",
        f'<p class="meta">PSI thresholds: ok &lt; {thresholds["warn"]} ≤ warn &lt; '
        f"{thresholds['drift']} ≤ drift; at least {thresholds['min_samples']} values per "
        "feature for a verdict.</p>",
        f'<div id="overall-status" class="overall s-{_e(status)}">Overall: '
        f"{_e(status.replace('_', ' '))} — {len(drifted)} drifted, {len(warned)} warning, "
        f"{len(features)} features</div></header>",
    ]
    if result.get("warnings"):
        out.append('<section class="warnings" id="input-warnings"><h2>Input warnings</h2><ul>')
        out += [f"<li>{_e(w)}</li>" for w in result["warnings"]]
        out.append("</ul></section>")

    out.append(
        '<section id="drift"><h2>Drift by feature (PSI)</h2><table id="psi-table"><thead><tr>'
        "<th>feature</th><th>kind</th><th>PSI</th><th>status</th><th>values</th>"
        "<th>current mean</th><th>reference mean</th><th>current std</th>"
        "<th>reference std</th></tr></thead><tbody>"
    )
    for name, f in features.items():
        cur, ref = f.get("current") or {}, f.get("reference") or {}
        out.append(
            f'<tr data-feature="{_e(name)}" data-status="{_e(f["status"])}"><td>{_e(name)}</td>'
            f"<td>{_e(f['kind'])}</td><td class=num>{_fmt(f['psi'])}</td>"
            f"<td>{_badge(f['status'])}</td><td class=num>{f['count']}</td>"
            f"<td class=num>{_fmt(cur.get('mean'))}</td><td class=num>{_fmt(ref.get('mean'))}</td>"
            f"<td class=num>{_fmt(cur.get('std'))}</td><td class=num>{_fmt(ref.get('std'))}</td>"
            "</tr>"
        )
    out.append("</tbody></table></section>")

    rows = result["window"]["rows"] or 1
    out.append(
        '<section id="data-quality"><h2>Data quality</h2><table id="quality-table"><thead><tr>'
        "<th>feature</th><th>missing</th><th>missing %</th>"
        "<th>outside training range</th><th>training range</th><th>unknown categories</th>"
        "</tr></thead><tbody>"
    )
    for name, f in features.items():
        quality = f["data_quality"]["window"]
        ref = f.get("reference") or {}
        span = (
            f"[{_fmt(ref.get('min'))}, {_fmt(ref.get('max'))}]" if f["kind"] == "numeric" else DASH
        )
        out.append(
            f'<tr data-feature="{_e(name)}"><td>{_e(name)}</td>'
            f"<td class=num>{quality['missing']}</td>"
            f"<td class=num>{quality['missing'] / rows:.1%}</td>"
            f"<td class=num>{quality.get('out_of_range', DASH)}</td><td>{span}</td>"
            f"<td class=num>{quality.get('unknown_category', DASH)}</td></tr>"
        )
    out.append("</tbody></table></section>")

    prediction = result["prediction"]
    out.append('<section id="prediction"><h2>Predictions vs training target</h2>')
    if result.get("has_predictions") and prediction.get("histogram"):
        hist = prediction["histogram"]
        what = "classes" if prediction["kind"] == "class" else "values"
        out.append(
            f'<div class="card"><h3>Predicted {what} '
            f"{_badge(prediction['status'])} PSI {_fmt(prediction['psi'])}</h3>"
            + histogram_svg(hist["bins"], hist["reference"], hist["current"], "predictions")
            + _legend()
            + "</div>"
        )
    else:
        out.append(
            '<p class="meta">No <code>prediction</code> column in the input: add one (the '
            "service's window export has it) to compare predictions with the training target "
            "distribution.</p>"
        )
    out.append("</section>")

    out.append('<section id="features"><h2>Per-feature distributions</h2><div class="grid">')
    for index, (name, f) in enumerate(features.items()):
        out.append(
            f'<article class="card feature" id="feature-{index}" data-feature="{_e(name)}">'
            f"<h3>{_e(name)} {_badge(f['status'])} <small>PSI {_fmt(f['psi'])}</small></h3>"
        )
        hist = f.get("histogram")
        if hist and hist["bins"]:
            out.append(histogram_svg(hist["bins"], hist["reference"], hist["current"], name))
            out.append(_legend())
        else:
            out.append('<p class="meta">No reference statistics for this feature.</p>')
        out.append("</article>")
    out.append("</div></section>")
    out.append(
        "<footer>PSI (population stability index) = Σ (current &minus; reference) · ln(current / "
        "reference) over the training decile bins (categories for categorical features); "
        "values below the training minimum count in the first bin, above the maximum in the "
        "last. See docs/monitoring.md for how to act on each signal.</footer>"
    )
    out.append("</main></body></html>")
    return "\n".join(out)


# --- CLI ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
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
    defaults = Thresholds()
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
        model_dir = args.model_dir or resolve_model_dir(
            args.artifacts_dir, args.model_name, args.model_version
        )
        metadata = load_metadata(model_dir)
        spec = MonitorSpec.from_metadata(metadata)
        data = read_input(args.input, spec, args.format)
        result = analyse(metadata, data, thresholds)
        document = render_html(result)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(document, encoding="utf-8")
        if args.json_output:
            args.json_output.write_text(json.dumps(result, indent=2), encoding="utf-8")
    except MonitoringError as exc:
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


if __name__ == "__main__":
    raise SystemExit(main())
