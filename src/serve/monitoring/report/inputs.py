"""The report's input: production rows from a CSV or a JSON document, in feature order.

- a CSV with a header row naming every feature (extra columns are ignored, except an optional
  ``prediction`` column: predicted class labels or values, compared with the training target
  distribution). Empty cells and ``NA``/``NaN``/``null``/``None`` are missing values;
- or JSON: a window exported by the service (``GET /monitoring/window``, format
  ``mlops-monitoring-window`` v1, see :meth:`ModelMonitor.export_window`), a list of records
  (``[{"sepal_length": 5.1, ...}, ...]``) or a batch request body (``{"records": [...]}``).

Non-numeric values in numeric columns are counted as missing and listed as warnings.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.serve.monitoring.drift import MonitoringError, MonitorSpec
from src.serve.monitoring.window import EXPORT_FORMAT

PREDICTION_COLUMN = "prediction"
MISSING_TOKENS = frozenset({"", "na", "nan", "null", "none", "n/a"})
MAX_INPUT_BYTES = 512 * 1024 * 1024


@dataclass
class ProductionData:
    """Parsed input rows (feature order) with optional predictions and parse warnings."""

    rows: list[list[Any]]
    predictions: list[Any] | None
    source: str
    warnings: list[str] = field(default_factory=list)


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise MonitoringError(f"input {path} is larger than {MAX_INPUT_BYTES} bytes")
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MonitoringError(f"cannot read input {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MonitoringError(f"input {path} is not UTF-8 text") from None


def parse_cell(raw: Any, kind: str, column: str, bad: dict[str, int]) -> Any:
    """One input cell as the monitor wants it: float / category string / None (missing).

    A value that is not a number in a numeric column counts as missing and is tallied in
    ``bad`` under ``column``.
    """
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
        [parse_cell(r.get(n), k, n, bad) for n, k in zip(names, kinds, strict=True)]
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
    return _records_to_data(cleaned, spec, str(path))


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
