"""Choose and build the backend that serves a loaded artifact."""

from __future__ import annotations

from loguru import logger

from src.serve.artifact import LoadedArtifact, load_pipeline
from src.serve.backends.base import Backend, Row
from src.serve.errors import ArtifactError, NoOnnxError
from src.serve.settings import Settings


def create_backend(artifact: LoadedArtifact, probe_row: Row, settings: Settings) -> Backend:
    """Build the backend that serves ``artifact`` (``INFERENCE_BACKEND``, ``ALLOW_PICKLE``).

    ``probe_row`` is a typical input in feature order (training medians) for load-time checks.

    - ``auto``: the ONNX backend when ``model.onnx`` is published, matches its sha256 and the
      graph can be fed; otherwise scikit-learn (the reason is logged) if ``ALLOW_PICKLE``
      allows, else the model is refused with that reason.
    - ``onnx``: the ONNX backend or refusal (``ArtifactError`` with the reason).
    - ``sklearn``: the pickled pipeline (settings validation requires ``ALLOW_PICKLE``).

    ``model.joblib`` is read and unpickled only when scikit-learn serves (``artifact.pipeline``
    is ``None`` when the loader deferred it).
    """
    choice = settings.inference_backend
    if choice != "sklearn":
        # Imported here: onnxruntime loads only when ONNX may serve.
        from src.serve.backends.onnx import load_onnx_backend

        try:
            return load_onnx_backend(artifact, probe_row)
        except ArtifactError as why_not:
            if choice == "onnx":
                raise type(why_not)(f"{why_not.message} (INFERENCE_BACKEND=onnx)") from why_not
            if not settings.allow_pickle:
                raise type(why_not)(
                    f"{why_not.message}; ALLOW_PICKLE=false forbids the scikit-learn fallback"
                ) from why_not
            # No ONNX published is routine (INFO); one published but unusable is worth a WARNING.
            logger.log(
                "INFO" if isinstance(why_not, NoOnnxError) else "WARNING",
                "ONNX backend not used, serving with scikit-learn: {}",
                why_not.message,
            )
    # Imported here: scikit-learn, SciPy and pandas load only when a pickle is served.
    from src.serve.backends.sklearn import SklearnBackend

    pipeline = artifact.pipeline
    if pipeline is None:
        pipeline = load_pipeline(artifact.ref, artifact.metadata)
    return SklearnBackend(pipeline, artifact.metadata, probe_row)
