"""Process-level helpers shared by the entry point and the workflow (no Metaflow import).

- `ensure_metaflow_user`: Metaflow refuses to run without a user name (e.g. as root in CI or
  a container); give it a default before Metaflow is imported, never overriding a usable one.
- `enable_bytecode_cache`: every Metaflow step is a new Python process; with bytecode
  caching disabled (``PYTHONDONTWRITEBYTECODE``) each one recompiles pandas/scikit-learn
  (seconds per step). Point the steps at a cache outside the work tree instead.
- the run summary file: workflow steps append their closing lines (or the failure) to the
  file named by ``TRAINING_SUMMARY_FILE`` so the entry point can print them last.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

DEFAULT_METAFLOW_USER = "mlops"
SUMMARY_ENV = "TRAINING_SUMMARY_FILE"
_USER_VARS = ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER")


def ensure_metaflow_user(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set ``METAFLOW_USER`` when Metaflow would find no usable user name; return what was set.

    Metaflow takes the first of METAFLOW_USER, SUDO_USER, USERNAME, USER that is set and is
    not ``root``; only when none qualifies is ``METAFLOW_USER`` set (to ``mlops``).
    """
    env = os.environ if environ is None else environ
    if any(env.get(var) and env.get(var) != "root" for var in _USER_VARS):
        return None
    env["METAFLOW_USER"] = DEFAULT_METAFLOW_USER
    return DEFAULT_METAFLOW_USER


def enable_bytecode_cache(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Give step processes a bytecode cache outside the work tree when caching is disabled.

    Only acts when ``PYTHONDONTWRITEBYTECODE`` is set and ``PYTHONPYCACHEPREFIX`` is not, and
    ``TRAINING_NO_BYTECODE_CACHE`` is unset (the opt-out). Returns the cache directory used.
    The cache lives under ``$XDG_CACHE_HOME`` (default ``~/.cache``)/mlops-toolset/pycache, so
    no ``__pycache__`` directory is written into the repository.
    """
    env = os.environ if environ is None else environ
    if not env.get("PYTHONDONTWRITEBYTECODE") or env.get("PYTHONPYCACHEPREFIX"):
        return None
    if env.get("TRAINING_NO_BYTECODE_CACHE"):
        return None
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    prefix = os.path.join(base, "mlops-toolset", "pycache")
    env.pop("PYTHONDONTWRITEBYTECODE")
    env["PYTHONPYCACHEPREFIX"] = prefix
    if environ is None:  # this process too: imports from here on use the same cache
        sys.pycache_prefix = prefix
        sys.dont_write_bytecode = False
    return prefix


def record_summary(lines: list[str], *, failed: bool = False) -> None:
    """Append closing lines for the entry point to print (no-op when not run through it)."""
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    prefix = "FAILED\t" if failed else "OK\t"
    with open(path, "a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(prefix + line.replace("\n", " ") + "\n")


def read_summary(path: str) -> tuple[list[str], list[str]]:
    """(ok lines, failure lines) recorded in the summary file."""
    ok: list[str] = []
    failed: list[str] = []
    try:
        with open(path, encoding="utf-8") as handle:
            for raw in handle:
                status, _, line = raw.rstrip("\n").partition("\t")
                (failed if status == "FAILED" else ok).append(line)
    except FileNotFoundError:
        pass
    return ok, failed
