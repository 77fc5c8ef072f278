"""Package boundaries: training never imports serving; trainers never import Metaflow."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TRAINING = REPO / "src" / "training"
#: the only modules allowed to import Metaflow (workflow glue, its deploy-time decorators and
#: the publish-from-run command), plus the offline deployment checks in src/training/deploy/
METAFLOW_MODULES = {"training_workflow.py", "publish_run.py", "retraining.py"}
METAFLOW_PACKAGES = {TRAINING / "deploy"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_training_never_imports_serving():
    for path in TRAINING.rglob("*.py"):
        bad = {m for m in imported_modules(path) if m == "src.serve" or m.startswith("src.serve.")}
        assert not bad, f"{path} imports {bad}"


def test_only_the_workflow_glue_imports_metaflow():
    for path in TRAINING.rglob("*.py"):
        uses = {m for m in imported_modules(path) if m.split(".")[0] == "metaflow"}
        if path.name not in METAFLOW_MODULES and path.parent not in METAFLOW_PACKAGES:
            assert not uses, f"{path} imports {uses}"


def test_trainers_and_steps_load_without_metaflow():
    code = (
        "import sys\n"
        "import src.training.trainers, src.training.steps, src.training.publish\n"
        "import src.training.card, src.training.config, src.training.drift_receiver\n"
        "assert 'metaflow' not in sys.modules, 'metaflow was imported'\n"
        "assert not any(m.startswith('src.serve') for m in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "mlops-test-pycache"))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_no_import_cycle_inside_training():
    import grimp

    graph = grimp.build_graph("src", cache_dir=None)
    modules = {m for m in graph.modules if m.startswith("src.training.")}
    cycles = [
        (module, imported)
        for module in sorted(modules)
        for imported in graph.find_modules_directly_imported_by(module)
        if imported in modules
        and graph.find_shortest_chain(importer=imported, imported=module) is not None
    ]
    assert not cycles, f"import cycles (function-level and TYPE_CHECKING imports count): {cycles}"
