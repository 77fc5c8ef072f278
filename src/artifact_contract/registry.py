"""The model registry tool: list versions, move aliases, roll back, prune.

    python -m src.artifact_contract.registry [--artifacts-dir DIR] list [MODEL] [--json]
    python -m src.artifact_contract.registry promote MODEL VERSION --alias NAME
    python -m src.artifact_contract.registry rollback MODEL --alias NAME
    python -m src.artifact_contract.registry prune MODEL --keep N [--dry-run]

It works on the artifact store only (``ARTIFACTS_DIR``, default ``artifacts``), so it runs
wherever the store is mounted. ``promote`` refuses a version that does not exist or does not
verify (signature and sha256, ``verify.py``; keys read as serving reads them). Alias moves are
atomic and recorded (``aliases.py``); a service following ``<model>@<alias>`` picks the move
up at its next poll. ``prune`` never deletes the version ``LATEST`` names, the version an
alias names, or the version an alias would roll back to. Exit codes: 0 done, 1 refused,
2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from src.artifact_contract.aliases import (
    alias_stack,
    list_aliases,
    move_alias,
    read_history,
)
from src.artifact_contract.errors import ContractError
from src.artifact_contract.layout import (
    HIDDEN_PREFIX,
    LATEST_FILE,
    METADATA_FILE,
    VERSION_NAME_RE,
    is_hidden,
)
from src.artifact_contract.verify import (
    VerificationError,
    keys_from_environment,
    unsigned_allowed,
    verify_version,
)


class RefusedError(Exception):
    """The command was refused; nothing was changed (the message says why)."""


def versions_of(model_dir: Path) -> list[str]:
    """Published version directories of a model, oldest first (names sort by publish time)."""
    if not model_dir.is_dir():
        raise RefusedError(f"no model {model_dir.name!r} under {model_dir.parent}")
    return sorted(
        p.name
        for p in model_dir.iterdir()
        if p.is_dir() and not is_hidden(p.name) and VERSION_NAME_RE.match(p.name)
        if (p / METADATA_FILE).is_file()
    )


def latest_of(model_dir: Path) -> str | None:
    """The version ``LATEST`` names (None when absent)."""
    try:
        return (model_dir / LATEST_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def protected_versions(model_dir: Path) -> dict[str, list[str]]:
    """Versions prune must keep, with why: LATEST, each alias, each alias's rollback target."""
    reasons: dict[str, list[str]] = {}
    latest = latest_of(model_dir)
    if latest:
        reasons.setdefault(latest, []).append(LATEST_FILE)
    for alias, version in list_aliases(model_dir).items():
        reasons.setdefault(version, []).append(alias)
        stack = alias_stack(read_history(model_dir, alias))
        if len(stack) >= 2:
            reasons.setdefault(stack[-2], []).append(f"{alias} rollback")
    return reasons


def _summary(model_dir: Path, version: str, keys: dict[str, bytes], allow: bool) -> dict[str, Any]:
    try:
        verified = verify_version(model_dir / version, keys, allow_unsigned=allow)
        metadata = verified.metadata
        signature = f"verified ({verified.key_id})" if verified.key_id else "unsigned (allowed)"
    except (VerificationError, ContractError) as exc:
        signature = f"REFUSED: {exc}"
        try:
            metadata = json.loads((model_dir / version / METADATA_FILE).read_bytes())
        except (OSError, ValueError):
            metadata = {}
    metrics = (metadata.get("metrics") or {}).get("test") if isinstance(metadata, dict) else None
    return {
        "version": version,
        "created_at": metadata.get("created_at") if isinstance(metadata, dict) else None,
        "test_metrics": metrics or {},
        "signature": signature,
    }


def command_list(root: Path, model: str | None, as_json: bool) -> int:
    """Print models, versions, creation time, test metrics, signature status and aliases."""
    keys, allow = keys_from_environment(), unsigned_allowed()
    if model is not None:
        names = [model]
    else:
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_hidden(p.name))
    report = []
    for name in names:
        model_dir = root / name
        marks = {}
        for version, why in protected_versions(model_dir).items():
            marks[version] = [w for w in why if not w.endswith(" rollback")]
        versions = []
        for version in versions_of(model_dir):
            entry = _summary(model_dir, version, keys, allow)
            entry["pointers"] = marks.get(version, [])
            versions.append(entry)
        report.append({"model": name, "aliases": list_aliases(model_dir), "versions": versions})
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    for item in report:
        print(f"{item['model']}")
        for v in item["versions"]:
            metrics = " ".join(f"{k}={float(x):.4f}" for k, x in v["test_metrics"].items())
            pointers = f"  <- {', '.join(v['pointers'])}" if v["pointers"] else ""
            print(f"  {v['version']}  {v['created_at']}  {metrics}  {v['signature']}{pointers}")
    return 0


def _verify_or_refuse(model_dir: Path, version: str) -> None:
    keys, allow = keys_from_environment(), unsigned_allowed()
    try:
        verify_version(model_dir / version, keys, allow_unsigned=allow)
    except (VerificationError, ContractError) as exc:
        raise RefusedError(f"version {version} does not verify: {exc}") from None


def command_promote(root: Path, model: str, version: str, alias: str) -> int:
    """Point ``alias`` at ``version`` once it verifies."""
    model_dir = root / model
    if version not in versions_of(model_dir):
        raise RefusedError(f"model {model!r} has no published version {version!r}")
    _verify_or_refuse(model_dir, version)
    previous = move_alias(model_dir, alias, version, action="promote")
    print(f"{model}@{alias}: {previous or '(unset)'} -> {version}")
    return 0


def command_rollback(root: Path, model: str, alias: str) -> int:
    """Point ``alias`` back at the version it named before the current one."""
    model_dir = root / model
    stack = alias_stack(read_history(model_dir, alias))
    if len(stack) < 2:
        raise RefusedError(f"{model}@{alias} has no earlier version to roll back to")
    target = stack[-2]
    if not (model_dir / target).is_dir():
        raise RefusedError(f"{model}@{alias} would roll back to {target}, which was deleted")
    try:
        verify_version(
            model_dir / target, keys_from_environment(), allow_unsigned=unsigned_allowed()
        )
    except (VerificationError, ContractError) as exc:
        raise RefusedError(f"version {target} does not verify: {exc}") from None
    previous = move_alias(model_dir, alias, target, action="rollback")
    print(f"{model}@{alias}: {previous} -> {target} (rolled back)")
    return 0


def command_prune(root: Path, model: str, keep: int, dry_run: bool) -> int:
    """Delete all but the newest ``keep`` versions, never a protected one."""
    model_dir = root / model
    versions = versions_of(model_dir)
    protected = protected_versions(model_dir)
    doomed = [v for v in versions[: max(len(versions) - keep, 0)] if v not in protected]
    for version in doomed:
        if dry_run:
            print(f"would delete {model}/{version}")
            continue
        hidden = model_dir / f"{HIDDEN_PREFIX}pruned-{version}-{os.getpid()}"
        os.replace(model_dir / version, hidden)  # disappears for readers in one step
        shutil.rmtree(hidden)
        print(f"deleted {model}/{version}")
    for version in versions:
        if version in protected and versions.index(version) < len(versions) - keep:
            print(f"kept {model}/{version} ({', '.join(protected[version])})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m src.artifact_contract.registry")
    parser.add_argument(
        "--artifacts-dir",
        type=Path,
        default=Path(os.environ.get("ARTIFACTS_DIR", "artifacts")),
        help="the artifact store (default: $ARTIFACTS_DIR or ./artifacts)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="models, versions, metrics, signatures, aliases")
    listing.add_argument("model", nargs="?")
    listing.add_argument("--json", action="store_true", help="JSON instead of text")
    promote = sub.add_parser("promote", help="point an alias at a verified version")
    promote.add_argument("model")
    promote.add_argument("version")
    promote.add_argument("--alias", required=True)
    rollback = sub.add_parser("rollback", help="point an alias back at its previous version")
    rollback.add_argument("model")
    rollback.add_argument("--alias", required=True)
    prune = sub.add_parser("prune", help="delete old versions (never LATEST or aliased ones)")
    prune.add_argument("model")
    prune.add_argument("--keep", type=int, required=True)
    prune.add_argument("--dry-run", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    args = build_parser().parse_args(argv)
    root: Path = args.artifacts_dir
    try:
        if args.command == "list":
            return command_list(root, args.model, args.json)
        if args.command == "promote":
            return command_promote(root, args.model, args.version, args.alias)
        if args.command == "rollback":
            return command_rollback(root, args.model, args.alias)
        if args.keep < 1:
            raise RefusedError("--keep must be at least 1")
        return command_prune(root, args.model, args.keep, args.dry_run)
    except (RefusedError, ContractError, ValueError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
