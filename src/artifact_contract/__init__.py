"""The artifact contract: what training writes and serving reads, written once.

Standard library only, and it imports neither ``src.training`` nor ``src.serve`` (both import
it; ``.importlinter`` and tests/unit_tests/artifact_contract enforce this):

- `layout`: file names, the ``LATEST`` pointer, version and model-name syntax, the missing
  category marker;
- `keys`: the signing-key syntax, the one character rule, the key-file reader;
- `signature`: the signed message, the signed-file list and ``signature.json``;
- `local_key`: the local signing key file, created once by training and trusted by serving
  when no key is configured (``ARTIFACT_SIGNING_LOCAL_FALLBACK``).

docs/artifact.md describes the format itself.
"""
