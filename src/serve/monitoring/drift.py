"""Drift math against the artifact's reference statistics (docs/artifact.md).

Everything here is pure and allocation-light; the online monitor (``window.py``) and the
offline report (the ``report`` package) share it, so a window and a CSV are judged the same way.

- Numeric features are binned on the reference's decile edges exactly as training binned
  them (``numpy.histogram`` after clipping): a value below the first edge counts in the first
  bin, above the last edge in the last bin, and a value equal to an interior edge in the bin
  that starts there.
- Categorical features are counted over the known categories plus one "unknown" bin whose
  reference fraction is 0 (so unseen categories raise the score).
- The population stability index ``PSI = sum((c - r) * ln(c / r))`` compares the current
  fractions ``c`` with the reference fractions ``r``; both are clipped below at ``epsilon`` so
  empty bins stay finite. Missing values are excluded from PSI (they are data-quality counts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from src.artifact_contract.layout import MISSING_CATEGORY

STATUS_OK = "ok"
STATUS_WARN = "warn"
STATUS_DRIFT = "drift"
STATUS_INSUFFICIENT = "insufficient_data"
STATUS_NO_REFERENCE = "no_reference"
#: Numeric codes of the statuses, as exported in ``model_feature_drift_status``.
STATUS_CODES: dict[str, int] = {
    STATUS_NO_REFERENCE: -2,
    STATUS_INSUFFICIENT: -1,
    STATUS_OK: 0,
    STATUS_WARN: 1,
    STATUS_DRIFT: 2,
}
#: Category codes stored for categorical values outside the known categories / absent.
UNKNOWN_CODE = -1.0
MISSING_CODE = -2.0
UNKNOWN_LABEL = "__unknown__"
#: Fractions are clipped below at this value so empty bins keep the PSI finite.
PSI_EPSILON = 1e-4


class MonitoringError(ValueError):
    """Metadata the monitor cannot use, or input it cannot read (message says which)."""


@dataclass(frozen=True)
class Thresholds:
    """When a PSI is ``warn`` or ``drift``, and how many rows a verdict needs.

    ``psi < warn`` is ``ok``, ``warn <= psi < drift`` is ``warn``, ``psi >= drift`` is
    ``drift``. With fewer than ``min_samples`` non-missing values the status is
    ``insufficient_data``: PSI on n rows has a sampling noise floor of about ``(bins - 1) / n``
    (0.045 for 10 bins and 200 rows), so tiny windows would raise false alarms.

    The service builds them from its settings (``MonitoringConfig.from_settings``), the
    offline report from its options, whose defaults are those settings' defaults.
    """

    warn: float
    drift: float
    min_samples: int
    epsilon: float = PSI_EPSILON

    def __post_init__(self) -> None:
        if not (0 < self.warn < self.drift):
            raise MonitoringError(
                f"drift thresholds must satisfy 0 < warn < drift (got warn={self.warn}, "
                f"drift={self.drift})"
            )
        if self.min_samples < 1:
            raise MonitoringError(f"min_samples must be >= 1 (got {self.min_samples})")
        if not (0 < self.epsilon < 0.01):
            raise MonitoringError(f"epsilon must be in (0, 0.01) (got {self.epsilon})")

    def status(self, score: float | None, n: int) -> str:
        """The status of a score computed on ``n`` values."""
        if score is None or math.isnan(score):
            return STATUS_NO_REFERENCE if n >= self.min_samples else STATUS_INSUFFICIENT
        if n < self.min_samples:
            return STATUS_INSUFFICIENT
        if score >= self.drift:
            return STATUS_DRIFT
        if score >= self.warn:
            return STATUS_WARN
        return STATUS_OK

    def as_dict(self) -> dict[str, float | int]:
        """The thresholds as JSON."""
        return {
            "warn": self.warn,
            "drift": self.drift,
            "min_samples": self.min_samples,
            "epsilon": self.epsilon,
        }


def worst_status(statuses: Sequence[str]) -> str:
    """The most severe of ``statuses`` (drift > warn > ok > insufficient_data)."""
    for candidate in (STATUS_DRIFT, STATUS_WARN, STATUS_OK, STATUS_INSUFFICIENT):
        if candidate in statuses:
            return candidate
    return STATUS_NO_REFERENCE if statuses else STATUS_INSUFFICIENT


def psi(reference: ArrayLike, current: ArrayLike, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of ``current`` against ``reference`` over the same bins.

    Both may be fractions or counts (each is normalised). Returns NaN when ``current`` is
    empty (nothing to compare).
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1 or ref.size == 0:
        raise MonitoringError(
            f"PSI needs two equally long 1-D distributions (got {ref.shape} and {cur.shape})"
        )
    if (ref < 0).any() or (cur < 0).any():
        raise MonitoringError("PSI needs non-negative fractions or counts")
    ref_total, cur_total = ref.sum(), cur.sum()
    if cur_total <= 0 or ref_total <= 0:
        return math.nan
    ref = np.maximum(ref / ref_total, epsilon)
    cur = np.maximum(cur / cur_total, epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MonitoringError(f"{what} must be a number (got {value!r})") from None
    if not math.isfinite(number):
        raise MonitoringError(f"{what} must be finite (got {value!r})")
    return number


@dataclass(frozen=True, eq=False)
class NumericReference:
    """A numeric reference: decile edges and fractions, range and moments."""

    name: str
    edges: np.ndarray
    fractions: np.ndarray
    minimum: float
    maximum: float
    mean: float | None
    std: float | None
    interior: np.ndarray = field(repr=False)

    kind = "numeric"

    @classmethod
    def from_stats(cls, name: str, stats: Mapping[str, Any]) -> NumericReference:
        """Build from a ``{"kind": "numeric", ...}`` entry, checking its shape."""
        what = f"reference statistics of {name!r}"
        try:
            raw_edges, raw_fractions = stats["bin_edges"], stats["bin_fractions"]
        except KeyError as exc:
            raise MonitoringError(f"{what} lack {exc.args[0]!r}") from None
        if not isinstance(raw_edges, list) or not isinstance(raw_fractions, list):
            raise MonitoringError(f"{what}: bin_edges and bin_fractions must be lists")
        edges = np.asarray([_finite(e, f"{what}: bin edge") for e in raw_edges])
        fractions = np.asarray([_finite(f, f"{what}: bin fraction") for f in raw_fractions])
        if fractions.size < 1 or edges.size != fractions.size + 1:
            raise MonitoringError(
                f"{what}: need len(bin_edges) == len(bin_fractions) + 1 >= 2 "
                f"(got {edges.size} edges, {fractions.size} fractions)"
            )
        if (np.diff(edges) < 0).any():
            raise MonitoringError(f"{what}: bin_edges must be non-decreasing")
        if (fractions < 0).any() or fractions.sum() <= 0:
            raise MonitoringError(f"{what}: bin_fractions must be non-negative, not all zero")

        def optional(key: str) -> float | None:
            value = stats.get(key)
            return None if value is None else _finite(value, f"{what}: {key}")

        minimum = optional("min")
        maximum = optional("max")
        return cls(
            name=name,
            edges=edges,
            fractions=fractions / fractions.sum(),
            minimum=float(edges[0]) if minimum is None else minimum,
            maximum=float(edges[-1]) if maximum is None else maximum,
            mean=optional("mean"),
            std=optional("std"),
            interior=edges[1:-1].copy(),
        )

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return int(self.fractions.size)

    def bin_counts(self, values: np.ndarray) -> np.ndarray:
        """Counts per reference bin of ``values`` (finite numbers; NaN must be removed)."""
        index = np.searchsorted(self.interior, values, side="right")
        return np.bincount(index, minlength=self.n_bins)

    def bin_labels(self) -> list[str]:
        """Human-readable bin ranges, e.g. ``[4.3, 4.8)``; the outer bins are open-ended."""
        edges = self.edges
        labels = []
        for i in range(self.n_bins):
            low = "-inf" if i == 0 else f"{edges[i]:.4g}"
            high = "+inf" if i == self.n_bins - 1 else f"{edges[i + 1]:.4g}"
            labels.append(f"[{low}, {high})")
        return labels

    def summary(self) -> dict[str, float | None]:
        """Reference moments and range as JSON."""
        return {"mean": self.mean, "std": self.std, "min": self.minimum, "max": self.maximum}


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    """A categorical reference: known categories (with codes) and their fractions.

    Bins are the known categories in order plus a final "unknown" bin (reference fraction 0).
    """

    name: str
    categories: tuple[str, ...]
    fractions: np.ndarray  # len(categories) + 1, last = unknown (0)
    has_frequencies: bool
    codes: dict[str, int] = field(repr=False)

    kind = "categorical"

    @classmethod
    def from_stats(
        cls,
        name: str,
        stats: Mapping[str, Any] | None,
        categories: Sequence[Any] | None,
    ) -> CategoricalReference:
        """Build from the feature's categories and a ``{"kind": "categorical"}`` entry."""
        frequencies: Mapping[str, Any] = {}
        if stats is not None:
            frequencies = stats.get("frequencies") or {}
            if not isinstance(frequencies, Mapping):
                raise MonitoringError(f"reference frequencies of {name!r} must be an object")
        known = [str(c) for c in (categories or [])]
        known += [str(k) for k in frequencies if str(k) not in known]
        if not known:
            raise MonitoringError(f"categorical {name!r} has neither categories nor frequencies")
        fractions = np.zeros(len(known) + 1)
        for key, value in frequencies.items():
            fractions[known.index(str(key))] = _finite(value, f"frequency of {name}={key!r}")
        has_frequencies = bool(frequencies) and fractions.sum() > 0
        if has_frequencies:
            fractions /= fractions.sum()
        return cls(
            name=name,
            categories=tuple(known),
            fractions=fractions,
            has_frequencies=has_frequencies,
            codes={c: i for i, c in enumerate(known)},
        )

    @property
    def n_bins(self) -> int:
        """Number of bins (known categories + unknown)."""
        return len(self.categories) + 1

    def code(self, value: Any) -> float:
        """The stored code of one raw value (unknown and missing have their own codes)."""
        if (
            value is None
            or value == MISSING_CATEGORY
            or (isinstance(value, float) and math.isnan(value))
        ):
            return MISSING_CODE
        code = self.codes.get(value if isinstance(value, str) else str(value))
        return UNKNOWN_CODE if code is None else float(code)

    def bin_counts(self, codes: np.ndarray) -> np.ndarray:
        """Counts per bin of ``codes`` (missing removed; unknown counted in the last bin)."""
        index = np.where(codes < 0, self.n_bins - 1, codes).astype(np.intp)
        return np.bincount(index, minlength=self.n_bins)

    def bin_labels(self) -> list[str]:
        """The categories, then the unknown bin."""
        return [*self.categories, UNKNOWN_LABEL]

    def decode(self, code: float) -> str | None:
        """The category of a stored code (unknown as ``__unknown__``, missing as None)."""
        if code == MISSING_CODE or math.isnan(code):
            return None
        if code == UNKNOWN_CODE:
            return UNKNOWN_LABEL
        return self.categories[int(code)]


Reference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class FeatureMonitorSpec:
    """One monitored input column: its kind, its reference (None when absent)."""

    name: str
    kind: str  # "numeric" | "categorical"
    reference: Reference | None


@dataclass(frozen=True)
class MonitorSpec:
    """What the monitor needs from one model's metadata.json."""

    model_name: str
    model_version: str
    task: str
    features: tuple[FeatureMonitorSpec, ...]
    target: Reference | None  # categorical over classes, or numeric for regression
    classes: tuple[Any, ...] | None

    @property
    def feature_names(self) -> list[str]:
        """Feature names in metadata order."""
        return [f.name for f in self.features]

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> MonitorSpec:
        """Read the monitor's view of ``metadata`` (the parsed metadata.json)."""
        if not isinstance(metadata, Mapping):
            raise MonitoringError("metadata must be a JSON object")
        try:
            raw_features = metadata["features"]
            task = metadata["task"]
        except KeyError as exc:
            raise MonitoringError(f"metadata lacks {exc.args[0]!r}") from None
        if not isinstance(raw_features, list) or not raw_features:
            raise MonitoringError("metadata 'features' must be a non-empty list")
        references = metadata.get("reference") or {}
        if not isinstance(references, Mapping):
            raise MonitoringError("metadata 'reference' must be an object")
        features = []
        for raw in raw_features:
            if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
                raise MonitoringError(f"malformed feature entry in metadata: {raw!r}")
            name, ftype = raw["name"], raw.get("type")
            stats = references.get(name)
            if ftype in ("number", "integer"):
                ref: Reference | None = None
                if stats is not None and stats.get("kind") == "numeric":
                    ref = NumericReference.from_stats(name, stats)
                features.append(FeatureMonitorSpec(name, "numeric", ref))
            elif ftype == "category":
                cat_stats = (
                    stats if stats is not None and stats.get("kind") == "categorical" else None
                )
                ref = CategoricalReference.from_stats(name, cat_stats, raw.get("categories"))
                features.append(FeatureMonitorSpec(name, "categorical", ref))
            else:
                raise MonitoringError(f"feature {name!r} has an unknown type {ftype!r}")
        target = metadata.get("target") or {}
        distribution = target.get("distribution") if isinstance(target, Mapping) else None
        classes = target.get("classes") if isinstance(target, Mapping) else None
        target_ref: Reference | None = None
        if task == "classification":
            if classes:
                kind = distribution.get("kind") if isinstance(distribution, Mapping) else None
                target_ref = CategoricalReference.from_stats(
                    "prediction", distribution if kind == "categorical" else None, classes
                )
        elif isinstance(distribution, Mapping) and distribution.get("kind") == "numeric":
            target_ref = NumericReference.from_stats("prediction", distribution)
        return cls(
            model_name=str(metadata.get("model_name", "unknown")),
            model_version=str(metadata.get("model_version", "unknown")),
            task=str(task),
            features=tuple(features),
            target=target_ref,
            classes=tuple(classes) if classes else None,
        )


@dataclass(frozen=True)
class DistributionResult:
    """A column's (or the predictions') drift over a sample."""

    psi: float | None
    status: str
    count: int
    labels: list[str]
    reference: list[float]
    current: list[float]

    def as_dict(self, histograms: bool = True) -> dict[str, Any]:
        """JSON, optionally without the per-bin fractions."""
        out: dict[str, Any] = {"psi": self.psi, "status": self.status, "count": self.count}
        if histograms:
            out["histogram"] = {
                "bins": self.labels,
                "reference": self.reference,
                "current": self.current,
            }
        return out


def _round(value: float, digits: int = 6) -> float:
    return float(round(value, digits))


def compare(
    reference: Reference | None, values: np.ndarray, thresholds: Thresholds
) -> DistributionResult:
    """Drift of ``values`` (floats; categorical codes; NaN/missing code = missing) vs reference."""
    if reference is None:
        present = values[~np.isnan(values)]
        return DistributionResult(
            None, thresholds.status(None, int(present.size)), int(present.size), [], [], []
        )
    if reference.kind == "numeric":
        present = values[~np.isnan(values)]
    else:
        present = values[(values != MISSING_CODE) & ~np.isnan(values)]
    n = int(present.size)
    labels = reference.bin_labels()
    ref_fractions = [_round(f) for f in reference.fractions.tolist()]
    if isinstance(reference, CategoricalReference) and not reference.has_frequencies:
        current = reference.bin_counts(present) / n if n else np.zeros(reference.n_bins)
        return DistributionResult(
            None, thresholds.status(None, n), n, labels, ref_fractions, current.round(6).tolist()
        )
    if n == 0:
        return DistributionResult(
            None,
            thresholds.status(0.0, 0),
            0,
            labels,
            ref_fractions,
            [0.0] * reference.n_bins,
        )
    counts = reference.bin_counts(present)
    score = psi(reference.fractions, counts, thresholds.epsilon)
    return DistributionResult(
        _round(score),
        thresholds.status(score, n),
        n,
        labels,
        ref_fractions,
        (counts / n).round(6).tolist(),
    )
