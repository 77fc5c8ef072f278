"""Serving package: a FastAPI service that serves the latest published model artifact.

It reads only the artifact format (docs/artifact.md) and never imports the training package.
Entry point: ``python -m src.serve.app``; user documentation: docs/serving.md.
"""
