"""Find, verify and deserialise one published artifact (docs/artifact.md, schema version 1).

Order of checks, cheapest and safest first: resolve the version (``LATEST`` or a pin), verify
the artifact's signature (``signing.py``: before anything is parsed or deserialised), parse
and validate ``metadata.json`` from the very bytes the signature covered, refuse
schema/library versions this server cannot honour,
read ``model.joblib`` into memory and check its size and sha256, and only then unpickle it
from the verified bytes (so the file cannot change between the check and the load).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib.metadata
import io
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from src.artifact_contract.aliases import ALIASES_DIR
from src.artifact_contract.documents import parse_json_object
from src.artifact_contract.errors import DocumentError
from src.artifact_contract.layout import (
    LATEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    MODEL_NAME_PATTERN,
    ONNX_FILE,
    SCHEMA_VERSION,
    SIGNATURE_FILE,
    VERSION_NAME_RE,
    is_hidden,
)
from src.serve.errors import (
    ArtifactNotFoundError,
    IncompatibleArtifactError,
    IntegrityError,
    InvalidArtifactError,
    ModelLoadError,
)
from src.serve.signing import Keyring, check_signing_metadata

RESERVED_FEATURE_NAMES = frozenset({"request_id", "records"})


class FeatureSpec(BaseModel):
    """One model input, in the order the pipeline takes it."""

    name: str = Field(min_length=1, max_length=256)
    type: Literal["number", "integer", "category"]
    categories: list[str | int | float] | None = None
    allow_unknown: bool = False
    #: the saved pipeline imputes a missing value (older artifacts: none does)
    imputed: bool = False


class TargetSpec(BaseModel):
    """What the model predicts."""

    name: str
    classes: list[str | int | float | bool] | None = None
    distribution: dict[str, Any] | None = None


class ModelFileSpec(BaseModel):
    """The pickled pipeline and its recorded digest."""

    path: Literal["model.joblib"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=1)


class ArtifactMetadata(BaseModel):
    """The subset of metadata.json serving relies on (other fields are kept in ``raw``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    schema_version: Literal[1]
    model_name: str = Field(pattern=MODEL_NAME_PATTERN)
    model_version: str = Field(pattern=VERSION_NAME_RE.pattern)
    trainer_class: str
    task: Literal["classification", "regression"]
    features: list[FeatureSpec] = Field(min_length=1)
    target: TargetSpec
    metrics: dict[str, Any]
    data: dict[str, Any]
    reference: dict[str, dict[str, Any]]
    versions: dict[str, str]
    run: dict[str, Any]
    created_at: str
    model_file: ModelFileSpec
    onnx: dict[str, Any] | None = None
    signing: dict[str, Any] | None = None

    @field_validator("features")
    @classmethod
    def _unique_names(cls, features: list[FeatureSpec]) -> list[FeatureSpec]:
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        reserved = RESERVED_FEATURE_NAMES.intersection(names)
        if reserved:
            raise ValueError(f"feature names {sorted(reserved)} are reserved by the API")
        return features

    @field_validator("versions")
    @classmethod
    def _required_versions(cls, versions: dict[str, str]) -> dict[str, str]:
        missing = {"python", "scikit-learn", "numpy"} - versions.keys()
        if missing:
            raise ValueError(f"missing library versions: {sorted(missing)}")
        return versions

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Input column names in pipeline order."""
        return tuple(f.name for f in self.features)


@dataclass(frozen=True)
class ArtifactRef:
    """A resolved version directory (not yet verified)."""

    model_name: str
    version: str
    directory: Path

    def fingerprint(self) -> tuple[int, ...]:
        """Cheap identity of the files on disk (to avoid retrying a known-bad artifact)."""
        stats = []
        for name in (METADATA_FILE, MODEL_FILE, ONNX_FILE, SIGNATURE_FILE):
            try:
                st = (self.directory / name).stat()
                stats.extend((st.st_mtime_ns, st.st_size))
            except OSError:
                stats.extend((-1, -1))
        return tuple(stats)


@dataclass(frozen=True)
class LoadedArtifact:
    """Verified metadata plus the deserialised pipeline (``None`` when it was not unpickled:
    ``load_artifact(..., deserialize=False)``; see :func:`load_pipeline`)."""

    ref: ArtifactRef
    metadata: ArtifactMetadata
    raw_metadata: dict[str, Any]
    pipeline: Any
    warnings: tuple[str, ...] = ()
    signed_by: str | None = None  # the key id that verified the signature (None: unverified)
    trust_warning: str | None = None  # why an unverified artifact was accepted (ALLOW_UNSIGNED)


def _is_visible_version(path: Path) -> bool:
    return path.is_dir() and not is_hidden(path.name) and bool(VERSION_NAME_RE.match(path.name))


def resolve(artifacts_dir: Path, model_name: str, pinned_version: str | None = None) -> ArtifactRef:
    """Which version to serve: the pin, else ``LATEST``, else the newest complete version dir.

    Entries starting with ``.`` (in-progress publishes such as ``.tmp-*``) are never chosen. An
    artifacts directory the server may not read (permissions) is reported as not found, with
    the cause and without the path (the reason is shown on the unauthenticated /health).
    """
    try:
        return _resolve(artifacts_dir, model_name, pinned_version)
    except OSError as exc:
        cause = (exc.strerror or "I/O error").lower()
        raise ArtifactNotFoundError(
            f"cannot read the artifacts of model {model_name!r} ({cause})"
        ) from None


def _resolve(artifacts_dir: Path, model_name: str, pinned_version: str | None) -> ArtifactRef:
    model_dir = artifacts_dir / model_name
    if pinned_version is not None:
        directory = model_dir / pinned_version
        if not VERSION_NAME_RE.match(pinned_version) or not directory.is_dir():
            raise ArtifactNotFoundError(
                f"pinned version {pinned_version!r} of model {model_name!r} is not published"
            )
        return ArtifactRef(model_name, pinned_version, directory)
    if not model_dir.is_dir():
        raise ArtifactNotFoundError(f"no model {model_name!r} is published yet")
    latest = model_dir / LATEST_FILE
    try:
        version = latest.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        candidates = sorted(
            p.name
            for p in model_dir.iterdir()
            if _is_visible_version(p) and (p / METADATA_FILE).is_file()
        )
        if not candidates:
            raise ArtifactNotFoundError(
                f"no version of model {model_name!r} is published yet"
            ) from None
        version = candidates[-1]
    except (OSError, UnicodeDecodeError):
        raise ArtifactNotFoundError(
            f"the LATEST pointer of model {model_name!r} is unreadable"
        ) from None
    return _pointed_version(model_dir, model_name, version, "the LATEST pointer", "LATEST")


def resolve_alias(artifacts_dir: Path, model_name: str, alias: str) -> ArtifactRef:
    """The version the alias ``<model>/aliases/<alias>`` names (moved by the registry tool)."""
    try:
        return _resolve_alias(artifacts_dir, model_name, alias)
    except OSError as exc:
        cause = (exc.strerror or "I/O error").lower()
        raise ArtifactNotFoundError(
            f"cannot read alias {alias!r} of model {model_name!r} ({cause})"
        ) from None


def _resolve_alias(artifacts_dir: Path, model_name: str, alias: str) -> ArtifactRef:
    model_dir = artifacts_dir / model_name
    try:
        version = (model_dir / ALIASES_DIR / alias).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        raise ArtifactNotFoundError(
            f"model {model_name!r} has no alias {alias!r} (set it with: python -m "
            f"src.artifact_contract.registry promote {model_name} <version> --alias {alias})"
        ) from None
    except UnicodeDecodeError:
        raise ArtifactNotFoundError(
            f"alias {alias!r} of model {model_name!r} is unreadable"
        ) from None
    return _pointed_version(model_dir, model_name, version, f"alias {alias!r}", f"alias {alias!r}")


def _pointed_version(
    model_dir: Path, model_name: str, version: str, pointer: str, short: str
) -> ArtifactRef:
    """The version a pointer file (LATEST or an alias) names, once its text is checked to be
    a version name and that version exists."""
    if not VERSION_NAME_RE.match(version):
        raise ArtifactNotFoundError(f"{pointer} of model {model_name!r} is malformed")
    directory = model_dir / version
    if not directory.is_dir():
        raise ArtifactNotFoundError(
            f"{short} of model {model_name!r} names version {version!r}, which does not exist"
        )
    return ArtifactRef(model_name, version, directory)


def read_metadata(
    ref: ArtifactRef, data: bytes | None = None
) -> tuple[ArtifactMetadata, dict[str, Any]]:
    """Parse and validate metadata.json (``data``: its bytes, already read and verified),
    checking it describes this very directory."""
    try:
        data = (ref.directory / METADATA_FILE).read_bytes() if data is None else data
    except FileNotFoundError:
        raise InvalidArtifactError(f"version {ref.version}: metadata.json is missing") from None
    except OSError:
        raise InvalidArtifactError(f"version {ref.version}: metadata.json is unreadable") from None
    try:
        raw = parse_json_object(data, METADATA_FILE)
    except DocumentError as exc:
        raise InvalidArtifactError(f"version {ref.version}: {exc}") from None
    schema_version = raw.get("schema_version")
    if schema_version != SCHEMA_VERSION or isinstance(schema_version, bool):
        raise IncompatibleArtifactError(
            f"version {ref.version}: metadata schema_version {schema_version!r} is not supported "
            f"(this server reads schema_version {SCHEMA_VERSION})"
        )
    try:
        metadata = ArtifactMetadata.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'metadata'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise InvalidArtifactError(
            f"version {ref.version}: invalid metadata.json ({problems})"
        ) from None
    if metadata.model_name != ref.model_name or metadata.model_version != ref.version:
        raise InvalidArtifactError(
            f"version {ref.version}: metadata names {metadata.model_name}/"
            f"{metadata.model_version}, not the directory it is in"
        )
    return metadata, raw


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


@functools.cache
def installed_sklearn_version() -> str | None:
    """The installed scikit-learn's version, read from its package metadata (importing it
    would load SciPy too), or ``None`` where it is not installed (the slim image)."""
    try:
        return importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_compatible(metadata: ArtifactMetadata) -> list[str]:
    """Refuse library versions that cannot be honoured; return warnings for tolerable drift.

    Refused: a different scikit-learn major.minor (pickles are not portable across them; not
    checked where scikit-learn is not installed, as nothing can be unpickled there), a
    different numpy or Python major version. Other differences are returned as warnings.
    """
    versions = metadata.versions
    sklearn_version = installed_sklearn_version()
    installed = {
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    problems = []
    if sklearn_version is not None and _major_minor(versions["scikit-learn"]) != _major_minor(
        sklearn_version
    ):
        problems.append(
            f"it was trained with scikit-learn {versions['scikit-learn']} but this server runs "
            f"{sklearn_version} (major.minor must match)"
        )
    for lib in ("numpy", "python"):
        if versions[lib].split(".")[0] != installed[lib].split(".")[0]:
            problems.append(
                f"it was trained with {lib} {versions[lib]} but this server runs {installed[lib]} "
                "(major version must match)"
            )
    if problems:
        raise IncompatibleArtifactError(f"version {metadata.model_version}: " + "; ".join(problems))
    return [
        f"{lib} {versions[lib]} at training, {installed[lib]} here"
        for lib in ("python", "numpy")
        if _major_minor(versions[lib]) != _major_minor(installed[lib])
    ]


def read_verified_model_bytes(ref: ArtifactRef, spec: ModelFileSpec) -> bytes:
    """Read the model file once and check its size and sha256 against the metadata."""
    try:
        data = (ref.directory / spec.path).read_bytes()
    except FileNotFoundError:
        raise InvalidArtifactError(f"version {ref.version}: {spec.path} is missing") from None
    except OSError:
        raise InvalidArtifactError(f"version {ref.version}: {spec.path} is unreadable") from None
    if len(data) != spec.size_bytes:
        raise IntegrityError(
            f"version {ref.version}: {spec.path} is {len(data)} bytes, metadata says "
            f"{spec.size_bytes} (truncated or replaced)"
        )
    digest = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(digest, spec.sha256):
        raise IntegrityError(
            f"version {ref.version}: sha256 of {spec.path} does not match its metadata"
        )
    return data


def _check_pipeline(pipeline: Any, metadata: ArtifactMetadata) -> None:
    from sklearn.base import BaseEstimator  # only once a pickle was loaded

    if not isinstance(pipeline, BaseEstimator) or not callable(getattr(pipeline, "predict", None)):
        raise IncompatibleArtifactError(
            f"version {metadata.model_version}: model.joblib does not hold a scikit-learn "
            "estimator with predict()"
        )
    if metadata.task == "classification":
        classes = getattr(pipeline, "classes_", None)
        if classes is None or metadata.target.classes is None:
            raise IncompatibleArtifactError(
                f"version {metadata.model_version}: a classifier must expose its class labels"
            )
        if [str(c) for c in np.asarray(classes).tolist()] != [
            str(c) for c in metadata.target.classes
        ]:
            raise IncompatibleArtifactError(
                f"version {metadata.model_version}: the pipeline's classes differ from "
                "metadata target.classes"
            )


def load_pipeline(ref: ArtifactRef, metadata: ArtifactMetadata) -> Any:
    """Read ``model.joblib``, check its size and sha256, then unpickle the verified bytes."""
    import joblib  # imported where a pickle is loaded: an ONNX-only server never needs it

    data = read_verified_model_bytes(ref, metadata.model_file)
    try:
        # Deserialising runs code from the pickle: only reached after the sha256 recorded in
        # metadata matched the exact bytes loaded here (and the signature covered metadata).
        pipeline = joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise ModelLoadError(
            f"version {ref.version}: model.joblib could not be deserialised"
        ) from exc
    _check_pipeline(pipeline, metadata)
    return pipeline


def read_verified_onnx_bytes(ref: ArtifactRef, metadata: ArtifactMetadata) -> bytes:
    """Read ``model.onnx`` once and check it against metadata ``onnx`` (sha256, size if
    recorded). Callers check first that metadata publishes one (``onnx.path``)."""
    entry = metadata.onnx or {}
    expected = entry.get("sha256")
    if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise InvalidArtifactError(f"version {ref.version}: metadata onnx.sha256 is missing")
    try:
        data = (ref.directory / ONNX_FILE).read_bytes()
    except FileNotFoundError:
        raise InvalidArtifactError(f"version {ref.version}: {ONNX_FILE} is missing") from None
    except OSError:
        raise InvalidArtifactError(f"version {ref.version}: {ONNX_FILE} is unreadable") from None
    size = entry.get("size_bytes")
    if isinstance(size, int) and len(data) != size:
        raise IntegrityError(
            f"version {ref.version}: {ONNX_FILE} is {len(data)} bytes, metadata says {size} "
            "(truncated or replaced)"
        )
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), expected):
        raise IntegrityError(
            f"version {ref.version}: sha256 of {ONNX_FILE} does not match its metadata"
        )
    return data


def load_artifact(
    ref: ArtifactRef, keyring: Keyring | None = None, *, deserialize: bool = True
) -> LoadedArtifact:
    """Verify and deserialise one artifact; raises an ``ArtifactError`` subclass on any fault.

    ``deserialize=False`` stops after the metadata checks: ``model.joblib`` is neither read
    nor unpickled (the backend choice loads it with :func:`load_pipeline` only if needed).

    ``keyring`` is the signature policy (``Settings.keyring()``), checked before anything else;
    the service always passes one. ``None`` skips it (tools and tests of the other checks).
    """
    verification = keyring.verify(ref.directory, ref.version) if keyring is not None else None
    metadata, raw = read_metadata(ref, verification.metadata_bytes if verification else None)
    if verification is not None:
        check_signing_metadata(metadata.signing, verification, ref.version)
    drift = check_compatible(metadata)
    pipeline = load_pipeline(ref, metadata) if deserialize else None
    return LoadedArtifact(
        ref=ref,
        metadata=metadata,
        raw_metadata=raw,
        pipeline=pipeline,
        warnings=tuple(drift),
        signed_by=verification.key_id if verification else None,
        trust_warning=verification.warning if verification else None,
    )
