"""One verified, warmed-up model, and how it is built from a published artifact."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from src.serve.artifact import ArtifactMetadata, ArtifactRef, load_artifact
from src.serve.backends.base import Backend
from src.serve.backends.factory import create_backend
from src.serve.backends.timing import inline_row_limit
from src.serve.errors import ArtifactError, ModelLoadError
from src.serve.model_schemas import ModelSchemas, build_model_schemas, reference_row
from src.serve.settings import Settings


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One verified, warmed-up model: everything a request needs, immutable."""

    metadata: ArtifactMetadata
    raw_metadata: dict[str, Any]
    ref: ArtifactRef
    backend: Backend
    schemas: ModelSchemas
    loaded_at: float
    load_seconds: float
    warnings: tuple[str, ...] = field(default=())
    #: Calls of up to this many rows run on the event loop (fast backends, see
    #: ``backends.timing.inline_row_limit``); larger ones go to the thread pool. 0: never.
    inline_max_rows: int = 0

    #: Model name, version and task from metadata, as plain attributes: requests read them
    #: several times each, and a property call costs more than the read.
    name: str = field(init=False)
    version: str = field(init=False)
    #: True for classification models.
    is_classifier: bool = field(init=False)

    def __post_init__(self) -> None:
        metadata = self.metadata
        object.__setattr__(self, "name", metadata.model_name)
        object.__setattr__(self, "version", metadata.model_version)
        object.__setattr__(self, "is_classifier", metadata.task == "classification")

    @property
    def loaded_at_iso(self) -> str:
        """Load time as ISO-8601 UTC."""
        return datetime.fromtimestamp(self.loaded_at, UTC).isoformat()


def build_loaded_model(ref: ArtifactRef, settings: Settings) -> LoadedModel:
    """Verify, deserialise, build backend and schemas, and warm up one artifact.

    The metadata is verified first; which model file is then read (``model.onnx`` or the
    pickled ``model.joblib``) is the backend choice's (:func:`create_backend`).
    """
    started = time.perf_counter()
    artifact = load_artifact(ref, settings.keyring(), deserialize=False)  # signature first
    if artifact.trust_warning:
        logger.warning("loading an unverified model: {}", artifact.trust_warning)
    metadata = artifact.metadata
    example = reference_row(metadata)
    probe_row = tuple(example[name] for name in metadata.feature_names)
    try:
        backend = create_backend(artifact, probe_row, settings)
        warm = backend.predict([probe_row])
    except ArtifactError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"version {ref.version}: warm-up prediction failed") from exc
    if len(warm) != 1:
        raise ModelLoadError(f"version {ref.version}: warm-up returned {len(warm)} rows for 1")
    schemas = build_model_schemas(
        metadata,
        has_probabilities=backend.has_probabilities,
        max_batch_rows=settings.max_batch_rows,
        example=example,
    )
    inline_max_rows = inline_row_limit(backend, probe_row)
    return LoadedModel(
        metadata=metadata,
        raw_metadata=artifact.raw_metadata,
        ref=ref,
        backend=backend,
        schemas=schemas,
        loaded_at=time.time(),
        load_seconds=time.perf_counter() - started,
        warnings=artifact.warnings,
        inline_max_rows=inline_max_rows,
    )
