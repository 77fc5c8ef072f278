"""Shared bits of the hardening tests: fake signing keys, signed apps, log capture, a hung model.

Every key here is a throwaway test value (audited in .secrets.baseline).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from src.serve.access_log import ACCESS_LOG
from src.serve.settings import Settings
from tests.artifact_factory import BuiltArtifact, build_iris_artifact, sign_artifact
from tests.unit_tests.serve.helpers import SETTINGS_ENV_VARS, AppClient, make_settings

OLD_KEY = ("fake-key-2025", b"fake-signing-secret-old-not-real")  # pragma: allowlist secret
NEW_KEY = ("fake-key-2026", b"fake-signing-secret-new-not-real")  # pragma: allowlist secret
WRONG_SECRET = b"fake-signing-secret-wrong-not-real"  # pragma: allowlist secret


def key_spec(*keys: tuple[str, bytes]) -> str:
    """``ARTIFACT_SIGNING_KEYS`` syntax: ``id:secret,id2:secret2``."""
    return ",".join(f"{key_id}:{secret.decode()}" for key_id, secret in keys)


def signed_settings(
    artifacts: Path, *keys: tuple[str, bytes], allow_unsigned: bool = False, **overrides: Any
) -> Settings:
    """Settings that require signatures (the default policy), with ``keys`` (default: NEW_KEY)."""
    return make_settings(
        artifacts,
        artifact_signing_keys=key_spec(*(keys or (NEW_KEY,))),
        allow_unsigned=allow_unsigned,
        **overrides,
    )


def build_signed(root: Path, key: tuple[str, bytes] = NEW_KEY, **kwargs: Any) -> BuiltArtifact:
    """A published iris model signed with ``key``."""
    return build_iris_artifact(root, signing_key=key, **kwargs)


def resign(built: BuiltArtifact, key: tuple[str, bytes] = NEW_KEY) -> None:
    """Sign the directory's *current* files (a broken artifact that was validly signed)."""
    sign_artifact(built.directory, *key)


@contextmanager
def signed_service_settings(root: Path, **overrides: Any) -> Iterator[Settings]:
    """Signed settings over a fresh signed iris artifact in ``root``, with no ``*_``
    environment variable of the machine and an empty config file in effect (for module-scoped
    fixtures, which cannot use the function-scoped ``clean_env``)."""
    artifacts = root / "artifacts"
    artifacts.mkdir()
    build_signed(artifacts)
    config = root / "empty.yaml"
    config.write_text("")
    with pytest.MonkeyPatch.context() as env:
        for name in SETTINGS_ENV_VARS:
            env.delenv(name, raising=False)
        env.setenv("SERVE_CONFIG", str(config))
        yield signed_settings(artifacts, **overrides)


CLIENT_LOGGERS = ("httpx", "httpcore")  # the test's own HTTP client, not the service


@contextmanager
def captured_logs(level: str = "TRACE") -> Iterator[io.StringIO]:
    """Everything the service logs (loguru's lines with message, extras, tracebacks, and the
    access lines) while the block runs; the test client's own request lines are left out."""
    stream = io.StringIO()
    handler = logger.add(
        stream,
        level=level,
        filter=lambda record: not record["name"].startswith(CLIENT_LOGGERS),
        format="{level} {message} | {extra}",
        colorize=False,
        backtrace=False,
        diagnose=False,  # as the service's own sinks: no local variables in tracebacks
    )
    # The access log (one line per request) is written apart from loguru: into the same
    # stream, as text, flushed when the block ends.
    ACCESS_LOG.configure(stream, json=False)
    try:
        yield stream
    finally:
        ACCESS_LOG.configure(None, json=False)
        with suppress(ValueError):  # already removed if the block reconfigured logging
            logger.remove(handler)


def hang_backend(client: AppClient, seconds: float) -> threading.Event:
    """Make the serving model take ``seconds`` per call, in the thread pool; the event is set
    when the stuck call finally returns."""
    model = client.app.state.serve.store.current
    # Models measured at load to answer in microseconds are called inline on the event loop
    # (inference.py); a hang there cannot be interrupted. A slow model runs in the thread
    # pool, which is where a hang can happen and what the time limit covers.
    object.__setattr__(model, "inline_max_rows", 0)
    original = model.backend.predict
    done = threading.Event()

    def slow_predict(rows: Any) -> Any:
        time.sleep(seconds)  # a model stuck in C code: the thread cannot be interrupted
        done.set()
        return original(rows)

    object.__setattr__(model.backend, "predict", slow_predict)
    return done
