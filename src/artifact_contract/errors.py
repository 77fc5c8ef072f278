"""Errors of the artifact contract. Messages never contain a secret."""

from __future__ import annotations


class ContractError(ValueError):
    """Base class: something does not follow the artifact contract."""


class KeyFormatError(ContractError):
    """A signing key is not ``<key_id>:<secret>`` or breaks the character rule."""


class KeyFileError(ContractError):
    """A key file cannot be read."""


class DocumentError(ContractError):
    """An artifact's JSON file is not a JSON object."""


class SignatureDocumentError(DocumentError):
    """``signature.json`` is a JSON object but not a valid signature document."""
