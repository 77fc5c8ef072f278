"""Build ``metadata.json`` per docs/artifact.md and docs/artifact-metadata.schema.json.

`build_draft` assembles everything known when training ends (it is stored as an artifact of
the Metaflow run); `finalize` adds what only publishing knows: version, timestamp, file
hashes and signing.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.artifact_contract.layout import MODEL_FILE, SCHEMA_VERSION
from src.training.features import MISSING_CATEGORY, FeatureSpec

if TYPE_CHECKING:
    import pandas as pd

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True)
class RunInfo:
    """Which workflow run produced the model."""

    flow_name: str
    run_id: str
    git_commit: str | None = None

    @property
    def pathspec(self) -> str:
        """``<flow>/<run_id>``, usable with the Metaflow client."""
        return f"{self.flow_name}/{self.run_id}"

    def as_dict(self) -> dict[str, Any]:
        """The metadata ``run`` entry."""
        return {
            "flow_name": self.flow_name,
            "run_id": self.run_id,
            "pathspec": self.pathspec,
            "git_commit": self.git_commit,
        }


def library_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Versions of the libraries that define the pickled pipeline."""
    import joblib
    import numpy as np
    import pandas as pd
    import sklearn

    versions = {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "joblib": joblib.__version__,
    }
    versions.update(extra or {})
    return versions


def git_commit(start: Path | None = None) -> str | None:
    """The current commit: ``GIT_COMMIT``/``GITHUB_SHA`` if set, else read from ``.git``."""
    for var in ("GIT_COMMIT", "GITHUB_SHA"):
        value = os.environ.get(var, "").strip().lower()
        if _SHA.match(value):
            return value
    directory = (start or Path.cwd()).resolve()
    for candidate in (directory, *directory.parents):
        git_dir = _git_dir(candidate / ".git")
        if git_dir is not None:
            return _read_head(git_dir)
    return None


def _git_dir(dot_git: Path) -> Path | None:
    """The repository directory behind ``.git``: the folder itself, or, in a linked worktree
    or submodule, the folder a ``gitdir: <path>`` file points to."""
    if dot_git.is_dir():
        return dot_git
    if not dot_git.is_file():
        return None
    try:
        text = dot_git.read_text().strip()
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    target = Path(text[len("gitdir: ") :])
    target = target if target.is_absolute() else dot_git.parent / target
    return target if target.is_dir() else None


def _common_dir(git_dir: Path) -> Path:
    """Where refs live: a linked worktree keeps only HEAD and names the shared folder in
    ``commondir``."""
    try:
        common = (git_dir / "commondir").read_text().strip()
    except OSError:
        return git_dir
    path = Path(common)
    return path if path.is_absolute() else (git_dir / path).resolve()


def _read_head(git_dir: Path) -> str | None:
    try:
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head if _SHA.match(head) else None
        ref = head[5:]
        common = _common_dir(git_dir)
        for ref_file in (git_dir / ref, common / ref):
            if ref_file.is_file():
                value = ref_file.read_text().strip()
                return value if _SHA.match(value) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref and _SHA.match(parts[0]):
                    return parts[0]
    except OSError:
        return None
    return None


def feature_entries(
    spec: FeatureSpec,
    X_train: pd.DataFrame,  # noqa: N803
    imputed: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The ordered ``features`` list: allowed categories seen in training, and whether the
    saved pipeline imputes a missing value (``imputed``, see `features.imputed_features`)."""
    entries = []
    for f in spec.features:
        categories = None
        if f.is_categorical:
            values = X_train[f.name].map(str)
            categories = sorted(set(values) - {MISSING_CATEGORY})
        entries.append(
            {
                "name": f.name,
                "type": f.type,
                "categories": categories,
                "allow_unknown": f.is_categorical,
                "imputed": f.name in imputed,
            }
        )
    return entries


def build_draft(
    *,
    model_name: str,
    trainer_class: str,
    task: str,
    spec: FeatureSpec,
    X_train: pd.DataFrame,  # noqa: N803
    target: str,
    classes: Sequence[Any] | None,
    target_distribution: dict[str, Any],
    selection_metric: str,
    best_candidate: str,
    test_metrics: dict[str, Any],
    candidates: list[dict[str, Any]],
    data: dict[str, Any],
    reference: dict[str, Any],
    run: RunInfo,
    onnx_info: dict[str, Any],
    extra_versions: dict[str, str] | None = None,
    quality_gate: dict[str, Any] | None = None,
    imputed: Collection[str] = (),
) -> dict[str, Any]:
    """Metadata without the publish-time fields (see `finalize`)."""
    from src.training.evaluation import to_json_scalar

    return {
        "schema_version": SCHEMA_VERSION,
        "model_name": model_name,
        "model_version": None,
        "trainer_class": trainer_class,
        "task": task,
        "features": feature_entries(spec, X_train, imputed),
        "target": {
            "name": target,
            "classes": None if classes is None else [to_json_scalar(c) for c in classes],
            "distribution": target_distribution,
        },
        "metrics": {
            "selection_metric": selection_metric,
            "best_candidate": best_candidate,
            "test": test_metrics,
            "candidates": candidates,
            "quality_gate": quality_gate,
        },
        "data": data,
        "reference": reference,
        "versions": library_versions(extra_versions),
        "run": run.as_dict(),
        "created_at": None,
        "model_file": None,
        "onnx": onnx_info,
        "signing": None,
    }


def finalize(
    draft: dict[str, Any],
    *,
    model_version: str,
    created_at: str,
    model_sha256: str,
    model_size: int,
    signing: dict[str, str] | None,
) -> dict[str, Any]:
    """Complete metadata: the draft plus version, timestamp, model file hash and signing."""
    metadata = dict(draft)
    metadata.update(
        {
            "model_version": model_version,
            "created_at": created_at,
            "model_file": {
                "path": MODEL_FILE,
                "sha256": model_sha256,
                "size_bytes": model_size,
            },
            "signing": signing,
        }
    )
    return metadata


def summary_lines(metadata: dict[str, Any], directory: str | None) -> list[str]:
    """The closing lines a run prints: where the artifact is and its test metrics."""
    test = metadata["metrics"]["test"]
    keys = (
        ["accuracy", "f1_macro"] if metadata["task"] == "classification" else ["rmse", "mae", "r2"]
    )
    figures = ", ".join(f"{k}={test[k]:.4f}" for k in keys if k in test)
    onnx = metadata.get("onnx") or {}
    onnx_note = "model.onnx included" if onnx.get("path") else f"no ONNX ({onnx.get('reason')})"
    lines = []
    if directory is not None:
        lines.append(
            f"Published {metadata['model_name']} version {metadata['model_version']} to {directory}"
        )
    lines.append(
        f"Best candidate: {metadata['metrics']['best_candidate']}; test metrics: {figures}; "
        f"{onnx_note}"
    )
    return lines
