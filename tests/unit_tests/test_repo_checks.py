"""The shipping files pass their checks, and the checks `nox -s lint` runs really fail on
broken files (a linter that passes everything would hide every mistake).

Python tools come from validation_requirements.txt. System tools (docker-compose, promtool) are
skipped when missing, unless REQUIRE_SYSTEM_TOOLS=1 (CI), which turns a missing tool into a
failure.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dockerfile_stages import DOCKERFILE, parse, stage
from tests.system_tools import system_tool

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
K8S = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "docker-compose.yaml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "ml-api.json"
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def python_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: python -m pip install -r validation_requirements.txt")
    return path


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=180)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --------------------------------------------------------------------------- Dockerfile


BROKEN_DOCKERFILE = "FROM python:latest\nRUN apt-get install curl\nCMD python app.py\n"


def test_hadolint_passes_the_dockerfile() -> None:
    result = run(python_tool("hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(BROKEN_DOCKERFILE)
    result = run(python_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(broken))
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3025"):  # latest tag, unpinned apt, shell-form CMD
        assert rule in result.stdout


def test_runtime_stage_is_serving_only_non_root_and_exec_form() -> None:
    runtime = stage("runtime")
    sources = [s for copy in runtime.copies for s in copy.sources]
    assert not any("training" in s or s == "requirements.txt" for s in sources), sources
    assert "run_training_workflow.py" not in sources
    assert runtime.user
    assert runtime.user.split(":")[0] not in {"root", "0"}
    assert runtime.env["FASTAPI_HOST"] == "0.0.0.0"
    assert runtime.cmd == ["python", "-m", "src.serve.app"]
    healthcheck = runtime.healthcheck
    assert healthcheck is not None
    assert "/health/live" in " ".join(healthcheck[1])
    assert healthcheck[1][0] == "python"


def test_serving_venv_stage_installs_only_the_serving_requirements() -> None:
    runtime = stage("runtime")
    (venv_copy,) = [c for c in runtime.copies if c.from_stage]
    deps = stage(venv_copy.from_stage)
    copied = [s for copy in deps.copies for s in copy.sources]
    assert "requirements-serve.txt" in copied
    assert "requirements.txt" not in copied
    assert not any(s.startswith("src") for s in copied), "the venv stage must not see the code"
    runs = " ".join(i.args for i in deps.all("RUN"))
    assert "-r requirements-serve.txt" in runs


def pins(path: Path) -> dict[str, str]:
    return dict(
        line.split(" ")[0].split("==", 1)
        for line in path.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )


def test_slim_stages_install_the_slim_requirements_and_refuse_pickles() -> None:
    slim, full = stage("runtime-slim"), stage("runtime")
    (venv_copy,) = [c for c in slim.copies if c.from_stage]
    deps = stage(venv_copy.from_stage)
    assert deps.name == "serve-deps-slim"
    copied = [s for copy in deps.copies for s in copy.sources]
    assert "requirements-serve-slim.txt" in copied
    assert "requirements-serve.txt" not in copied
    assert "-r requirements-serve-slim.txt" in " ".join(i.args for i in deps.all("RUN"))
    assert slim.env["ALLOW_PICKLE"] == "false"
    # otherwise the same image: code, user, settings, command and probe
    assert {k: v for k, v in slim.env.items() if k != "ALLOW_PICKLE"} == full.env
    assert [c for c in slim.copies if not c.from_stage] == [
        c for c in full.copies if not c.from_stage
    ]
    assert (slim.user, slim.cmd, slim.healthcheck) == (full.user, full.cmd, full.healthcheck)
    names = [each.name for each in parse()]
    assert names.index("runtime") < names.index("serve-deps-slim") < names.index("trainer")


def test_slim_requirements_are_the_serving_pins_without_the_pickle_runtime() -> None:
    """Same versions as requirements-serve.txt; only scikit-learn, SciPy, pandas, joblib and
    what only they need are left out; the .in lists every other pyproject dependency."""
    slim, full = pins(ROOT / "requirements-serve-slim.txt"), pins(ROOT / "requirements-serve.txt")
    assert slim, "no pins in requirements-serve-slim.txt"
    assert all(full.get(name) == version for name, version in slim.items()), slim
    assert not slim.keys() & {"scikit-learn", "scipy", "pandas", "joblib"}
    assert {"onnxruntime", "numpy", "fastapi", "uvicorn"} <= slim.keys()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=\[]", dep)[0].lower() for dep in project["dependencies"]}
    listed = {
        re.split(r"[<>=\[]", line)[0].lower()
        for line in (ROOT / "requirements-serve-slim.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert listed == declared - {"scikit-learn", "pandas", "joblib"}


def test_serving_requirements_hold_no_training_package() -> None:
    pins = {
        line.split("==")[0].lower()
        for line in (ROOT / "requirements-serve.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert not pins & {"metaflow", "skl2onnx", "onnx", "matplotlib", "boto3"}


def test_a_serving_build_needs_no_trainer_stage_and_no_parser_image() -> None:
    """The legacy builder builds every stage above --target; BuildKit fetches a `# syntax=`
    parser image from Docker Hub (offline builds fail)."""
    names = [each.name for each in parse()]
    runtime = stage("runtime")
    needed = set(runtime.lineage)
    for copy in runtime.copies:
        if copy.from_stage:
            needed |= set(stage(copy.from_stage).lineage)
    assert set(names[: names.index("runtime") + 1]) == needed, names
    assert names.index("trainer") > names.index("runtime")
    first_lines = DOCKERFILE.read_text().lstrip().splitlines()
    assert not any(re.match(r"#\s*syntax\s*=", line) for line in first_lines[:5])


def test_every_base_image_is_pinned_to_a_version() -> None:
    for each in parse():
        _, _, tag = each.base.partition(":")
        assert tag != "latest", each.base
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{each.base}: pin an x.y.z tag"


def test_dockerignore_admits_exactly_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "ignore everything by default, then re-include"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for each in parse():
        for copy in each.copies:
            if copy.from_stage:
                continue
            for source in copy.sources:
                parts = Path(source).parts
                assert any("/".join(parts[: i + 1]) in admitted for i in range(len(parts))), (
                    f"{source} is COPYed but excluded by .dockerignore"
                )
    assert "artifacts" not in admitted
    assert "secrets" not in admitted


# --------------------------------------------------------------------------- workflows


def test_workflows_pass_schema_and_zizmor() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    schema = run(
        python_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    dependabot = run(
        python_tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.dependabot",
        ".github/dependabot.yml",
    )
    assert dependabot.returncode == 0, dependabot.stdout + dependabot.stderr
    zizmor = run(python_tool("zizmor"), "--offline", ".github")
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr


def test_check_jsonschema_fails_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  build:\n    steps: run everything\n")
    result = run(
        python_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken)
    )
    assert result.returncode != 0
    assert "runs-on" in result.stdout or "steps" in result.stdout


def test_zizmor_fails_an_unpinned_injectable_workflow(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        textwrap.dedent(
            """\
            name: bad
            on: pull_request_target
            jobs:
              greet:
                runs-on: ubuntu-latest
                steps:
                  - uses: actions/checkout@v4
                  - uses: someone/some-action@main
                  - run: echo "${{ github.event.pull_request.title }}"
            """
        )
    )
    result = run(python_tool("zizmor"), "--offline", str(tmp_path / ".github"))
    assert result.returncode != 0
    assert "template-injection" in result.stdout
    assert "unpinned-uses" in result.stdout


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("code-testing.yml", "code-testing"),
        ("code-validation.yml", "code-validation"),
        ("code-security.yml", "code-security"),
    ],
)
def test_the_three_pull_request_checks(file: str, name: str) -> None:
    workflow = load_yaml(WORKFLOWS / file)
    assert workflow["name"] == name
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["pull_request"]["branches"] == ["main"]
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read"}
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    for step in steps:
        if "uses" in step:
            assert SHA_PIN.match(step["uses"]), f"{step['uses']} is not pinned to a commit SHA"
    setup = [s for s in steps if s.get("uses", "").startswith("actions/setup-python@")]
    assert setup
    assert setup[0]["with"]["cache"] == "pip"
    commands = " ".join(step.get("run", "") for step in steps)
    scripts = re.findall(r"\.github/scripts/[\w.]+\.sh", commands)
    called = commands + " ".join((ROOT / s).read_text() for s in scripts)
    assert re.search(r"\bnox -s (tests|lint|security)\b", called), f"{name} does not call nox"


def test_dependabot_covers_pip_actions_and_docker() -> None:
    config = load_yaml(ROOT / ".github" / "dependabot.yml")
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert {"pip", "github-actions", "docker"} <= ecosystems


def test_pre_commit_pins_the_same_ruff_as_the_tools() -> None:
    tools = (ROOT / "validation_requirements.txt").read_text()
    (ruff_pin,) = re.findall(r"^ruff==(\S+)", tools, flags=re.MULTILINE)
    config = load_yaml(ROOT / ".pre-commit-config.yaml")
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format"} <= hooks.keys()
    assert "--check" in hooks["ruff-format"]["entry"]
    for hook_id in ("ruff-check", "ruff-format"):
        assert hooks[hook_id]["additional_dependencies"] == [f"ruff=={ruff_pin}"]


# --------------------------------------------------------------------------- compose


BROKEN_COMPOSE = textwrap.dedent(
    """\
    services:
      ml-api-service:
        build: .
        ports: "8000"
        restart: sometimes
        healthcheck:
          test: 42
    """
)


def test_compose_file_passes_the_compose_spec_schema() -> None:
    result = run(
        python_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_schema_fails_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(BROKEN_COMPOSE)
    result = run(
        python_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)
    )
    assert result.returncode != 0


def test_docker_compose_config_accepts_the_repo_and_rejects_a_broken_file(tmp_path: Path) -> None:
    compose = system_tool("docker-compose", package="docker-compose")
    good = run(
        compose,
        "-f",
        str(COMPOSE),
        *("--profile", "train", "--profile", "monitoring", "--profile", "slim"),
        "config",
        "-q",
    )
    assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(BROKEN_COMPOSE)
    bad = run(compose, "-f", str(broken), "config", "-q", cwd=tmp_path)
    assert bad.returncode != 0
    assert "invalid" in (bad.stdout + bad.stderr).lower()


def test_compose_service_is_hardened_and_mounts_artifacts_read_only() -> None:
    services = load_yaml(COMPOSE)["services"]
    api = services["ml-api-service"]
    assert api["build"]["dockerfile"] == "Dockerfile"
    assert api["build"]["target"] == "runtime"
    assert api["read_only"] is True
    assert any(str(t).startswith("/tmp") for t in api["tmpfs"])
    (artifacts,) = [v for v in api["volumes"] if v["target"] == "/app/artifacts"]
    assert artifacts["read_only"] is True
    assert artifacts["source"] == "./artifacts"
    assert api["environment"]["API_KEYS_FILE"] == "/run/secrets/api_keys"
    assert "api_keys" in api["secrets"]
    assert "API_KEYS" not in api["environment"], "keys come from the secret file only"
    assert api["healthcheck"]["test"][0] == "CMD"
    assert "/health/live" in str(api["healthcheck"])
    assert api["restart"] == "unless-stopped"
    assert api["ports"][0].startswith("127.0.0.1:")
    assert services["trainer"]["profiles"] == ["train"]
    assert services["trainer"]["build"]["target"] == "trainer"
    assert stage("trainer").name == "trainer"
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    slim = services["ml-api-service-slim"]
    assert slim["profiles"] == ["slim"]
    assert slim["build"]["target"] == "runtime-slim"
    # everything else as the full service (a YAML merge of it)
    for key in ("read_only", "tmpfs", "volumes", "environment", "secrets", "security_opt"):
        assert slim[key] == api[key], key
    assert slim["ports"][0].startswith("127.0.0.1:")
    assert slim["ports"][0] != api["ports"][0]


def test_compose_secret_files_are_git_ignored_and_only_examples_are_committed() -> None:
    secrets_cfg = load_yaml(COMPOSE)["secrets"]
    for secret in secrets_cfg.values():
        path = secret["file"]
        ignored = run("git", "check-ignore", "-q", path)
        assert ignored.returncode == 0, f"{path} is not git-ignored"
        assert (ROOT / (path + ".example")).is_file()
    tracked = run("git", "ls-files", "secrets").stdout.split()
    assert tracked
    assert all(p.endswith(".example") for p in tracked)


# --------------------------------------------------------------------------- Kubernetes


def manifests() -> list[str]:
    return sorted(str(p) for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_kubernetes_manifests_validate() -> None:
    result = run(python_tool("kubernetes-validate"), "--strict", "--quiet", *manifests())
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_fails_a_broken_manifest(tmp_path: Path) -> None:
    broken = tmp_path / "deployment.yaml"
    broken.write_text(
        textwrap.dedent(
            """\
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: broken
            spec:
              replicas: two
              selector:
                matchLabels: {app: broken}
              template:
                metadata:
                  labels: {app: broken}
                spec:
                  containers:
                    - name: api
                      image: example/api:1.0
                      livenessProbe:
                        httpGet: {path: /health/live, port: http}
                        periodSecs: 10
            """
        )
    )
    result = run(python_tool("kubernetes-validate"), "--strict", str(broken))
    assert result.returncode != 0
    assert "replicas" in result.stdout + result.stderr


def test_deployment_probes_security_and_resources() -> None:
    deployment = load_yaml(K8S / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"requests", "limits"} <= container["resources"].keys()
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["artifacts"]["readOnly"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["API_KEYS_FILE"].startswith(mounts["api-keys"]["mountPath"])
    kinds = {load_yaml(Path(p))["kind"] for p in manifests()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Secret"} <= kinds
    secret = load_yaml(K8S / "secret.example.yaml")
    assert all(value == "" for value in secret["stringData"].values()), "template only"


def test_kustomization_lists_existing_files_and_not_the_secret_template() -> None:
    resources = load_yaml(K8S / "kustomization.yaml")["resources"]
    assert all((K8S / name).is_file() for name in resources)
    assert "secret.example.yaml" not in resources


# --------------------------------------------------------------------------- import boundaries


SCRATCH_PACKAGES = ("serve", "training", "artifact_contract")


def _scratch_project(root: Path, **imports: str) -> Path:
    """A copy of the repo's contracts over a scratch `src` with three tiny packages; each
    package's one module holds ``imports[<package>]`` (default: a standard-library import)."""
    package = root / "src"
    (package).mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for sub in SCRATCH_PACKAGES:
        (package / sub).mkdir()
        (package / sub / "__init__.py").write_text("")
        (package / sub / "module.py").write_text(imports.get(sub, "import json\n"))
    shutil.copy(ROOT / ".importlinter", root / ".importlinter")
    return root


def _lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [python_tool("lint-imports"), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("importer", "violation"),
    [
        ("serve", "import src.training.module\n"),
        ("serve", "from metaflow import FlowSpec\n"),
        ("training", "import src.serve.module\n"),
        ("artifact_contract", "import src.serve.module\n"),
        ("artifact_contract", "from src.training import module\n"),
        ("artifact_contract", "import pydantic\n"),
        ("artifact_contract", "import yaml\n"),
    ],
    ids=[
        "serve-imports-training",
        "serve-imports-metaflow",
        "training-imports-serve",
        "contract-imports-serve",
        "contract-imports-training",
        "contract-imports-pydantic",
        "contract-imports-yaml",
    ],
)
def test_import_contract_fails_on_a_forbidden_import(
    tmp_path: Path, importer: str, violation: str
) -> None:
    result = _lint_imports(_scratch_project(tmp_path, **{importer: violation}))
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout


def test_import_contract_passes_a_clean_scratch_project(tmp_path: Path) -> None:
    both_use_the_contract = "import src.artifact_contract.module\n"
    project = _scratch_project(
        tmp_path, serve=both_use_the_contract, training=both_use_the_contract
    )
    result = _lint_imports(project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold_in_the_repo() -> None:
    if not (
        (ROOT / "src/serve/__init__.py").exists() and (ROOT / "src/training/__init__.py").exists()
    ):
        pytest.skip("src/serve or src/training is not there yet")
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- monitoring


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_dashboard_has_the_four_signals() -> None:
    exprs = " ".join(_dashboard_exprs())
    assert "serve_http_requests_total" in exprs
    assert 'status=~"5.."' in exprs
    assert "histogram_quantile(0.99" in exprs
    assert "serve_http_request_duration_seconds_bucket" in exprs
    assert "by (predicted_class)" in exprs
    assert "serve_predictions_total" in exprs


def test_prometheus_config_and_dashboard_queries_pass_promtool(tmp_path: Path) -> None:
    promtool = system_tool("promtool", package="prometheus")
    config = run(promtool, "check", "config", "monitoring/prometheus/prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": e.replace("$__rate_interval", "5m")}
                    for i, e in enumerate(_dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = run(promtool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules["groups"][0]["rules"].append({"record": "broken", "expr": "sum(rate(x[5m]) by"})
    path.write_text(yaml.safe_dump(rules))
    assert run(promtool, "check", "rules", str(path)).returncode != 0


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    provisioning = ROOT / "monitoring" / "grafana" / "provisioning"
    datasource = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    provider = load_yaml(provisioning / "dashboards" / "dashboards.yml")["providers"][0]
    grafana = load_yaml(COMPOSE)["services"]["grafana"]
    mounted = {v.split(":")[1] for v in grafana["volumes"] if v.startswith("./monitoring")}
    assert provider["options"]["path"] in mounted
    uids = {p["datasource"]["uid"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    assert uids == {datasource["uid"]}


# --------------------------------------------------------------------------- nox + audit


def test_nox_defines_the_sessions_users_and_ci_run() -> None:
    text = (ROOT / "noxfile.py").read_text()
    defined = set(re.findall(r"^def (\w+)\(session", text, flags=re.MULTILINE))
    assert {"tests", "lint", "security", "train", "serve", "demo", "image"} <= defined


def _load_pypi_audit() -> Any:
    spec = importlib.util.spec_from_file_location(
        "pypi_audit", ROOT / ".github" / "scripts" / "pypi_audit.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def test_pypi_audit_fallback_fails_on_a_known_vulnerability(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = _load_pypi_audit()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pinned\nGood_Pkg==1.0\n    # via x\nbad-pkg[extra]==2.0\nold==0.1\n")
    assert audit.read_pins([requirements]) == {"good-pkg": "1.0", "bad-pkg": "2.0", "old": "0.1"}

    def fake(name: str, version: str) -> Any:
        result = audit.Result(name, version, latest=version if name != "old" else "0.2")
        if name == "bad-pkg":
            result.vulns = [{"id": "GHSA-test", "aliases": ["CVE-1"], "fixed_in": ["2.1"]}]
        return result

    monkeypatch.setattr(audit, "look_up", fake)
    assert audit.main([str(requirements)]) == 1
    out = capsys.readouterr().out
    assert "VULNERABLE bad-pkg==2.0: GHSA-test" in out
    assert "old==0.1 (latest 0.2)" in out
    # The vulnerability ignored, the unverifiable pin still fails the audit ...
    assert audit.main([str(requirements), "--ignore-vuln", "CVE-1"]) == 1
    assert (
        "FAILED: 1 pins could not be verified here; this is not a pass" in capsys.readouterr().out
    )
    # ... unless explicitly accepted, which the output marks as incomplete.
    allowed = [str(requirements), "--ignore-vuln", "CVE-1", "--allow-unverified"]
    assert audit.main(allowed) == 0
    assert "WARNING: AUDIT INCOMPLETE: 1 pins were NOT checked" in capsys.readouterr().out
    requirements.write_text("Good_Pkg==1.0\n")
    assert audit.main([str(requirements)]) == 0
    assert "INCOMPLETE" not in capsys.readouterr().out


@functools.cache
def _load_noxfile() -> Any:  # once: nox refuses to register a session name twice
    spec = importlib.util.spec_from_file_location("repo_noxfile", ROOT / "noxfile.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _FakeSession:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def log(self, message: str) -> None:
        self.messages.append(message)

    warn = log


def test_demo_serves_with_a_fresh_random_key_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    noxfile = _load_noxfile()
    monkeypatch.delenv("API_KEYS", raising=False)
    monkeypatch.delenv("API_KEYS_FILE", raising=False)
    first = noxfile._demo_auth_env(_FakeSession(), no_auth=False)
    second = noxfile._demo_auth_env(_FakeSession(), no_auth=False)
    assert set(first) == {"API_KEYS"}
    assert len(first["API_KEYS"]) >= 40
    assert first["API_KEYS"] != second["API_KEYS"]
    noxfile._demo_banner(_FakeSession(), "8000", first["API_KEYS"])
    out = capsys.readouterr().out
    assert out.count(first["API_KEYS"]) == 2  # once on its own line, once in the curl
    assert f'-H "Authorization: Bearer {first["API_KEYS"]}"' in out
    assert "http://127.0.0.1:8000/predict" in out


def test_demo_uses_the_users_keys_or_an_explicit_no_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    noxfile = _load_noxfile()
    monkeypatch.setenv("API_KEYS", "mine")
    assert noxfile._demo_auth_env(_FakeSession(), no_auth=False) == {}
    session = _FakeSession()
    assert noxfile._demo_auth_env(session, no_auth=True) == {"AUTH_DISABLED": "true"}
    assert any("AUTH_DISABLED" in message for message in session.messages)


# --------------------------------------------------------------------------- README and CI


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_quick_start_uses_a_virtual_environment_and_ci_runs_its_test_command_verbatim() -> None:
    demo, tests = _quick_start_commands()
    for command in (demo, tests):
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && "), command
        assert "pip install --user" not in command
        assert "--break-system-packages" not in command
    assert tests.endswith("nox -s tests")
    assert demo.endswith("nox -s demo")
    ci_commands = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.lstrip().startswith("#")
    ]
    assert ci_commands[-1] == tests


def test_code_testing_installs_the_system_tools_and_refuses_silent_skips() -> None:
    workflow = load_yaml(WORKFLOWS / "code-testing.yml")
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    installs = " ".join(
        step.get("run", "") for step in steps if "apt-get install" in step.get("run", "")
    )
    for package in ("wrk", "prometheus", "docker-compose"):
        assert re.search(rf"\b{package}\b", installs), f"code-testing does not install {package}"
    assert "chrom" in installs or any("chrom" in str(step.get("uses", "")) for step in steps)
    (test_step,) = [step for step in steps if "nox -s tests" in step.get("run", "")]
    env = {**workflow.get("env", {}), **test_step.get("env", {})}
    assert env.get("REQUIRE_SYSTEM_TOOLS") == "1"
    assert test_step["run"].strip() == _quick_start_commands()[1]


def test_a_ci_job_builds_and_runs_the_serving_image() -> None:
    jobs = [job for path in WORKFLOWS.glob("*.yml") for job in load_yaml(path)["jobs"].values()]
    runs = [" ".join(step.get("run", "") for step in job["steps"]) for job in jobs]
    assert any("nox -s image" in run for run in runs), "no workflow job runs `nox -s image`"
