"""Compile the training flow for Argo Workflows offline and check what it generates.

``python -m src.training.deploy`` (the ``nox -s argo`` session) starts a local S3-compatible
server, runs ``argo-workflows create --only-json`` for the default, scheduled and triggered
variants, writes the Argo objects under ``build/argo/`` and checks them. Needs the tool
requirements (moto, hera, kubernetes), not the training runtime alone.
"""
