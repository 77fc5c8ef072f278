# Seven stages (docs/shipping.md, "Container design"):
#   venv-base        /opt/venv with the package metadata only (what both serving venvs start from)
#   serve-deps       + the pinned serving requirements
#   serve-base       the serving images' user, settings, probe and command, without code or venv
#   runtime          the serving image: serve-base + /opt/venv + src/serve and the stdlib-only
#                    src/artifact_contract it shares with training, nothing else
#   serve-deps-slim  the same virtualenv without scikit-learn, SciPy and pandas
#                    (requirements-serve-slim.txt)
#   runtime-slim     the slim serving image: ONNX models only (ALLOW_PICKLE=false)
#   trainer          the training workflow (Metaflow, `train` extra); `docker compose --profile train`
# Build one with --target (compose does): `docker build --target runtime .`. The trainer stage
# comes last because the legacy builder (no BuildKit) builds every stage above its target:
# this order keeps a serving build from building the trainer too (and a `runtime` build from
# building the slim stages). No `# syntax=` line: BuildKit would fetch that parser image from
# Docker Hub, which breaks builds on offline machines.
#
# The model is NOT baked into the image: compose and Kubernetes mount published artifacts
# read-only and the service picks up new versions itself (MODEL_POLL_SECONDS).
# tests/integration_tests/test_image_runtime.py reproduces both runtime stages without an
# engine: keep their COPY lines to plain files/folders of the build context or
# `--from=serve-deps[-slim]`; tests/integration_tests/test_image_build.py builds and runs them
# with a real engine.

############################ venv-base: the serving virtualenvs' common start ############
FROM python:3.11.14-slim-bookworm AS venv-base

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The package metadata (name + version = the API version, read with importlib.metadata) and
# no code: the build context here holds no src/, so the wheel carries only the dist-info.
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir --no-deps . \
    && python -c "import importlib.metadata as m; print('mlops-toolset', m.version('mlops-toolset'))"

############################ serve-deps: serving virtualenv ############################
FROM venv-base AS serve-deps

# Serving dependencies only (no Metaflow, no skl2onnx/onnx, no matplotlib); all are wheels,
# so no compiler is needed in any stage.
COPY requirements-serve.txt ./
RUN pip install --no-cache-dir -r requirements-serve.txt

############################ serve-base: what both serving images share ################
FROM python:3.11.14-slim-bookworm AS serve-base

LABEL org.opencontainers.image.licenses="MIT"

RUN groupadd --gid 10001 app \
    && useradd --no-log-init --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app

# ORT_DISABLE_TELEMETRY: onnxruntime otherwise writes a device id under $HOME/.cache, which a
# read-only root filesystem refuses (the image-runtime test catches any such write).
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FASTAPI_HOST=0.0.0.0 \
    FASTAPI_PORT=8000 \
    ARTIFACTS_DIR=/app/artifacts \
    LOG_JSON=true \
    ORT_DISABLE_TELEMETRY=1 \
    ARTIFACT_SIGNING_LOCAL_FALLBACK=false

WORKDIR /app
EXPOSE 8000

# No curl in the image: the interpreter does the probe (non-2xx or no answer -> exit 1).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('FASTAPI_PORT', '8000') + '/health/live', timeout=2)"]

CMD ["python", "-m", "src.serve.app"]

############################ runtime: the serving image ################################
FROM serve-base AS runtime

LABEL org.opencontainers.image.title="mlops-toolset serving API"

COPY --from=serve-deps /opt/venv /opt/venv
# Code is owned by root and read-only for the service user (readable whatever the umask of
# the checkout it was copied from).
COPY src/__init__.py src/__init__.py
COPY src/artifact_contract src/artifact_contract
COPY src/serve src/serve
RUN chmod -R a+rX,go-w /app/src

USER 10001:10001

###################### serve-deps-slim: the ONNX-only serving virtualenv ######################
FROM venv-base AS serve-deps-slim

# The serving dependencies without scikit-learn, SciPy, pandas and joblib (same pins).
COPY requirements-serve-slim.txt ./
RUN pip install --no-cache-dir -r requirements-serve-slim.txt

######################## runtime-slim: the ONNX-only serving image ########################
FROM serve-base AS runtime-slim

LABEL org.opencontainers.image.title="mlops-toolset serving API (ONNX only)"

# This image cannot unpickle model.joblib (no scikit-learn), so it serves models with a
# usable model.onnx only.
ENV ALLOW_PICKLE=false

COPY --from=serve-deps-slim /opt/venv /opt/venv
COPY src/__init__.py src/__init__.py
COPY src/artifact_contract src/artifact_contract
COPY src/serve src/serve
RUN chmod -R a+rX,go-w /app/src

USER 10001:10001

############################ trainer: the training workflow ############################
FROM python:3.11.14-slim-bookworm AS trainer

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY pyproject.toml README.md run_training_workflow.py ./
COPY src/__init__.py src/__init__.py
COPY src/artifact_contract src/artifact_contract
COPY src/training src/training
COPY deploy/docker/trainer-entrypoint.sh /usr/local/bin/trainer-entrypoint
RUN chmod -R a+rX,go-w /app /usr/local/bin/trainer-entrypoint \
    && chmod 755 /usr/local/bin/trainer-entrypoint \
    && groupadd --gid 10001 app \
    && useradd --no-log-init --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app

# Metaflow needs a user name, and its local datastore and cards somewhere writable (the code
# in /app is root-owned): /tmp. Only artifacts/ (a mounted volume) is written under /app.
# Containers sign (and the service verifies) with a mounted key only, never a local key file.
ENV METAFLOW_USER=trainer \
    METAFLOW_DATASTORE_SYSROOT_LOCAL=/tmp/metaflow \
    METAFLOW_CARD_LOCALROOT=/tmp/metaflow/mf.cards \
    HOME=/tmp \
    ARTIFACT_SIGNING_LOCAL_FALLBACK=false
# Non-root by default (Kubernetes runs it as 10001). docker-compose.yaml starts it as root with
# only SETUID/SETGID, and the entry point then switches to the owner of the mounted artifacts.
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/trainer-entrypoint"]
CMD ["python", "run_training_workflow.py", "run", "--config", "src/training/config.yaml"]
