"""``python -m src.training.deploy``: generate and check the Argo objects of the training flow.

    python -m src.training.deploy [--config src/training/config.yaml] [--out build/argo]

Exit status 0 when every variant passes, 1 with one line per problem otherwise. The cluster
settings (namespace, image, service account, ...) are the ``ClusterSettings`` defaults unless
the matching ``METAFLOW_*`` variable is set; the objects must use exactly those.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from src.training.config import DEFAULT_CONFIG_PATH
from src.training.config_loader import load_config
from src.training.runtime import ensure_metaflow_user

ROOT = Path(__file__).resolve().parents[3]
FLOW_SCRIPT = "run_training_workflow.py"


def main(argv: list[str] | None = None) -> int:
    """Check the default, scheduled and triggered deployments; print a line per variant."""
    parser = argparse.ArgumentParser(prog="python -m src.training.deploy", description=__doc__)
    parser.add_argument("--config", default=DEFAULT_CONFIG_PATH, help="training config to deploy")
    parser.add_argument("--out", default="build/argo", help="where the Argo objects are written")
    args = parser.parse_args(argv)
    ensure_metaflow_user()

    from src.training.deploy.argo_check import check_variants, standard_variants
    from src.training.deploy.compile import ClusterSettings
    from src.training.training_workflow import TrainingWorkflow

    config = load_config(args.config)
    reports = check_variants(
        FLOW_SCRIPT,
        TrainingWorkflow,
        Path(args.config).resolve(),
        standard_variants(config.model_name),
        Path(args.out).resolve(),
        cwd=ROOT,
        settings=ClusterSettings.from_environment(os.environ),
    )
    failed = False
    for report in reports:
        files = ", ".join(str(path) for path in report.files.values())
        verdict = "ok" if not report.problems else f"{len(report.problems)} problem(s)"
        print(f"{report.variant}: {verdict} ({files})")
        for problem in report.problems:
            print(f"  - {problem}")
        failed = failed or bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
