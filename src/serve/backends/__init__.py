"""Inference backends: the :class:`~src.serve.backends.base.Backend` interface, the
scikit-learn and ONNX implementations, and :func:`~src.serve.backends.factory.create_backend`,
which picks one for a loaded artifact."""
