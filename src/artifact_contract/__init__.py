"""The artifact contract: what training writes and serving reads, written once.

Standard library only, and it imports neither ``src.training`` nor ``src.serve`` (both import
it; ``.importlinter`` and tests/unit_tests/artifact_contract enforce this):

- `layout`: file names, the ``LATEST`` pointer, version and model-name syntax;
- `keys`: the signing-key syntax, the one character rule, the key-file reader;
- `signature`: the signed message, the signed-file list and ``signature.json``.

docs/artifact.md describes the format itself.
"""
