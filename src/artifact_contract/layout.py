"""Where a published model lives: ``<artifacts>/<model_name>/<model_version>/<files>``."""

from __future__ import annotations

import re

SCHEMA_VERSION = 1

METADATA_FILE = "metadata.json"
MODEL_FILE = "model.joblib"
ONNX_FILE = "model.onnx"
SIGNATURE_FILE = "signature.json"
#: one line naming the newest published version, next to the version directories
LATEST_FILE = "LATEST"
#: entries starting with this are in-progress or hidden; readers never choose them
HIDDEN_PREFIX = "."
TMP_PREFIX = HIDDEN_PREFIX + "tmp-"

MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
#: what training names a version: its UTC publish time, so versions sort in publish order
VERSION_FORMAT = "%Y%m%dT%H%M%S%fZ"
PUBLISHED_VERSION_RE = re.compile(r"^[0-9]{8}T[0-9]{12}Z$")
#: what a reader accepts as a version directory name (a pin may name any such directory)
VERSION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_hidden(name: str) -> bool:
    """True for directory entries readers must ignore (temporary publishes and the like)."""
    return name.startswith(HIDDEN_PREFIX)


#: How a missing categorical value reaches a saved pipeline (its imputer replaces it): ONNX
#: string inputs cannot carry NaN, hence an empty string. Missing numbers are NaN.
MISSING_CATEGORY = ""
