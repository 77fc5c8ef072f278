"""Run a flow's ``argo-workflows create --only-json`` and also save the Argo Events Sensor.

    ARGO_SENSOR_OUTPUT=sensor.json python -m src.training.deploy.export_sensor \\
        run_training_workflow.py --datastore=s3 argo-workflows create --only-json

``--only-json`` prints only the WorkflowTemplate, but the compiled deployment object also
holds the Sensor that a real ``create`` registers for ``@trigger``; this writes it (``{}``
when the flow has no trigger) so it can be validated offline.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any

from src.training.deploy.compile import SENSOR_OUTPUT_ENV


def _install_sensor_hook(output: Path) -> None:
    from metaflow.plugins.argo.argo_workflows import ArgoWorkflows

    print_template = ArgoWorkflows.__str__

    def print_and_save_sensor(self: Any) -> str:
        sensor = self._sensor.to_json() if self._sensor else {}
        output.write_text(json.dumps(sensor, indent=2), encoding="utf-8")
        return print_template(self)

    ArgoWorkflows.__str__ = print_and_save_sensor  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    """Install the hook, then run the flow script with the rest of the command line."""
    _install_sensor_hook(Path(os.environ[SENSOR_OUTPUT_ENV]))
    script, *args = argv
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
