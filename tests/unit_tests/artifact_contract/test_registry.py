"""The registry tool on a real artifact store: list, promote, rollback, prune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.artifact_contract.aliases import read_alias, read_history
from src.artifact_contract.registry import main
from tests.artifact_factory import BuiltArtifact, build_iris_artifact, new_version

KEY = ("k1", b"registry-test-secret")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[BuiltArtifact]]:
    monkeypatch.setenv("ARTIFACT_SIGNING_KEYS", f"{KEY[0]}:{KEY[1].decode()}")
    monkeypatch.delenv("ARTIFACT_SIGNING_KEYS_FILE", raising=False)
    monkeypatch.delenv("ALLOW_UNSIGNED", raising=False)
    root = tmp_path / "artifacts"
    built = [
        build_iris_artifact(root, model_version=new_version(offset), signing_key=KEY, C=c)
        for offset, c in ((-30, 1.0), (-20, 0.05), (-10, 0.5), (0, 2.0))
    ]
    return root, built


def run(root: Path, *argv: str) -> int:
    return main(["--artifacts-dir", str(root), *argv])


def test_promote_rollback_and_list(
    store: tuple[Path, list[BuiltArtifact]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, (v1, v2, _, v4) = store
    model_dir = root / "iris_classifier"
    assert run(root, "promote", "iris_classifier", v1.model_version, "--alias", "champion") == 0
    assert run(root, "promote", "iris_classifier", v2.model_version, "--alias", "champion") == 0
    assert read_alias(model_dir, "champion") == v2.model_version
    assert run(root, "rollback", "iris_classifier", "--alias", "champion") == 0
    assert read_alias(model_dir, "champion") == v1.model_version
    assert run(root, "rollback", "iris_classifier", "--alias", "champion") == 1  # nothing before
    assert len(read_history(model_dir, "champion")) == 3  # promote, promote, rollback
    capsys.readouterr()
    assert run(root, "list", "--json") == 0
    (report,) = json.loads(capsys.readouterr().out)
    versions = {v["version"]: v for v in report["versions"]}
    assert versions[v1.model_version]["pointers"] == ["champion"]
    assert versions[v4.model_version]["pointers"] == ["LATEST"]
    assert versions[v1.model_version]["signature"] == "verified (k1)"
    assert versions[v1.model_version]["test_metrics"]["accuracy"] > 0.8
    assert report["aliases"] == {"champion": v1.model_version}


@pytest.mark.parametrize("damage", ["tamper", "unsigned", "missing"])
def test_a_refused_promote_changes_nothing(
    store: tuple[Path, list[BuiltArtifact]], damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root, (v1, v2, _, _) = store
    model_dir = root / "iris_classifier"
    run(root, "promote", "iris_classifier", v1.model_version, "--alias", "champion")
    before = sorted((p.name, p.read_bytes()) for p in (model_dir / "aliases").iterdir())
    version = v2.model_version
    if damage == "tamper":
        path = v2.directory / "model.joblib"
        path.write_bytes(path.read_bytes() + b"x")
    elif damage == "unsigned":
        (v2.directory / "signature.json").unlink()
    else:
        version = "20990101T000000000000Z"
    capsys.readouterr()
    assert run(root, "promote", "iris_classifier", version, "--alias", "champion") == 1
    assert "refused" in capsys.readouterr().err
    after = sorted((p.name, p.read_bytes()) for p in (model_dir / "aliases").iterdir())
    assert after == before


def test_promote_with_the_wrong_key_is_refused(
    store: tuple[Path, list[BuiltArtifact]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, (v1, *_) = store
    monkeypatch.setenv("ARTIFACT_SIGNING_KEYS", "k1:another-secret")
    assert run(root, "promote", "iris_classifier", v1.model_version, "--alias", "champion") == 1
    assert read_alias(root / "iris_classifier", "champion") is None


def test_prune_keeps_latest_aliases_and_rollback_targets(
    store: tuple[Path, list[BuiltArtifact]],
) -> None:
    root, (v1, v2, v3, v4) = store
    extra = build_iris_artifact(
        root, model_version=new_version(-40), signing_key=KEY, set_latest=False
    )
    run(root, "promote", "iris_classifier", v2.model_version, "--alias", "champion")
    run(root, "promote", "iris_classifier", v3.model_version, "--alias", "champion")
    # LATEST names v4 (the factory moved it); versions: extra, v1, v2, v3, v4
    assert run(root, "prune", "iris_classifier", "--keep", "1", "--dry-run") == 0
    assert (extra.directory).is_dir()
    assert run(root, "prune", "iris_classifier", "--keep", "1") == 0
    left = sorted(p.name for p in (root / "iris_classifier").iterdir() if p.name[0].isdigit())
    # v4: LATEST; v3: champion; v2: where champion rolls back to
    assert left == sorted([v2.model_version, v3.model_version, v4.model_version])
    assert not v1.directory.exists()
    assert not extra.directory.exists()
    assert run(root, "prune", "iris_classifier", "--keep", "0") == 1
