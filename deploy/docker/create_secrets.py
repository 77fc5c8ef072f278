"""Create the git-ignored secret files docker-compose.yaml mounts, once, whatever the umask.

    python3 deploy/docker/create_secrets.py [--dir secrets]

Writes, when absent, ``api_keys.txt`` (one API key), ``artifact_signing_key.txt``
(``<key_id>:<secret>``, the trainer signs and the service verifies with it) and
``grafana_admin_password.txt``; files that exist keep their content. Compose bind-mounts each
file with its host mode, and the containers run as other users (the service as 10001, Grafana
as 472), so every file is made mode 0644 and the folder 0700: readable inside the containers,
closed to other users of the host. Nothing secret is printed. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "secrets"
FILE_MODE = 0o644
DIR_MODE = 0o700


def _api_key() -> str:
    return secrets.token_urlsafe(32)


def _signing_key() -> str:
    return f"local-{secrets.token_hex(4)}:{secrets.token_urlsafe(32)}"


def _grafana_password() -> str:
    return secrets.token_urlsafe(24)


SECRET_FILES: dict[str, Callable[[], str]] = {
    "api_keys.txt": _api_key,
    "artifact_signing_key.txt": _signing_key,
    "grafana_admin_password.txt": _grafana_password,
}


def ensure_secret(path: Path, make_value: Callable[[], str]) -> bool:
    """Create ``path`` holding a fresh value unless it exists; set its mode. True if created."""
    created = False
    if not path.exists():
        # O_EXCL: never overwrite a file that appeared meanwhile; the mode is fixed below, as
        # the one given to open() is reduced by the umask.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(make_value() + "\n")
        created = True
    path.chmod(FILE_MODE)
    return created


def create_secrets(directory: Path = DEFAULT_DIR) -> dict[str, bool]:
    """Every compose secret file in ``directory``: ``{file name: created now}``."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(DIR_MODE)
    return {name: ensure_secret(directory / name, make) for name, make in SECRET_FILES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    for name, created in create_secrets(args.dir).items():
        path = args.dir / name
        mode = stat.filemode(path.stat().st_mode)
        print(f"{path}: {'created' if created else 'kept'} ({mode})")
    print(f"{args.dir}: {stat.filemode(args.dir.stat().st_mode)} (git-ignored; contents not shown)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
