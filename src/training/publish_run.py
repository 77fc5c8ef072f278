"""Publish the model of a finished TrainingWorkflow run through the Metaflow client.

    python -m src.training.publish_run TrainingWorkflow/<run_id> [--output-dir artifacts]

Works for any run whose artifacts this machine's Metaflow client can read: a local run, or a
run executed remotely (``--with kubernetes``, ``--with batch``, Argo) with a shared datastore.
Only runs that finished successfully (so passed their quality gate) are published; the
artifact is written with the same atomic publisher as the workflow's publish step and signed
the same way (``ARTIFACT_SIGNING_KEY``/``ARTIFACT_SIGNING_KEY_FILE``, else the local key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from src.training.runtime import ensure_metaflow_user

FLOW_NAME = "TrainingWorkflow"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m src.training.publish_run",
        description="Publish the model of a finished TrainingWorkflow run.",
    )
    parser.add_argument("pathspec", help="TrainingWorkflow/<run_id> (or just <run_id>)")
    parser.add_argument(
        "--output-dir", help="where to publish (default: the run config's output_dir)"
    )
    parser.add_argument(
        "--force", action="store_true", help="publish even if this run is already published there"
    )
    return parser.parse_args(argv)


def _load_run(pathspec: str) -> dict[str, Any]:
    from metaflow import Run, namespace
    from metaflow.exception import MetaflowNotFound

    from src.training.errors import PublishError

    if "/" not in pathspec:
        pathspec = f"{FLOW_NAME}/{pathspec}"
    namespace(None)  # any user's run, not only this user's namespace
    try:
        run = Run(pathspec)
    except MetaflowNotFound:
        raise PublishError(f"run {pathspec} not found in this Metaflow datastore") from None
    if not run.successful:
        raise PublishError(
            f"run {pathspec} did not finish successfully (it failed, was stopped by its quality "
            "gate, or is still running); nothing was published"
        )
    task = run["quality_gate"].task
    data = task.data
    required = ("metadata", "model_joblib", "onnx_model", "cfg", "gate_passed")
    missing = [name for name in required if name not in task]
    if missing:
        raise PublishError(f"run {pathspec} lacks artifacts {missing}; is it a TrainingWorkflow?")
    if not data.gate_passed:
        raise PublishError(f"run {pathspec} did not pass its quality gate; nothing was published")
    return {
        "pathspec": pathspec,
        "metadata": data.metadata,
        "model_joblib": data.model_joblib,
        "onnx_model": data.onnx_model,
        "output_dir": data.cfg["output_dir"],
    }


def main(argv: list[str] | None = None) -> int:
    """Publish one run; prints where it went and its test metrics. Returns the exit code."""
    args = _parse(argv)
    ensure_metaflow_user()
    from src.training.errors import TrainingError
    from src.training.metadata import summary_lines
    from src.training.publish import find_published, publish_artifact
    from src.training.signing import resolve_signing_key

    try:
        run = _load_run(args.pathspec)
        output_dir = Path(args.output_dir or run["output_dir"])
        model_dir = output_dir / run["metadata"]["model_name"]
        existing = find_published(model_dir, run["pathspec"])
        if existing and not args.force:
            print(
                f"run {run['pathspec']} is already published as {model_dir / existing} "
                "(use --force to publish it again)"
            )
            return 0
        key, message = resolve_signing_key()
        if message:
            print(message, file=sys.stderr)
        published = publish_artifact(
            output_dir, run["metadata"], run["model_joblib"], run["onnx_model"], key
        )
    except TrainingError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    for line in summary_lines(published.metadata, str(published.directory)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
