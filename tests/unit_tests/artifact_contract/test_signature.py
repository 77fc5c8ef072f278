"""The signed message, signature.json and the artifact's JSON documents."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from src.artifact_contract.documents import parse_json_object
from src.artifact_contract.errors import DocumentError, SignatureDocumentError
from src.artifact_contract.keys import SigningKey
from src.artifact_contract.signature import (
    parse_signature_document,
    sign,
    signature_document,
    signature_matches,
    signature_message,
    signing_entry,
)

KEY = SigningKey("fake-key-2026", b"fake-signing-secret")  # pragma: allowlist secret
SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


def test_the_message_is_the_documented_text_in_file_order() -> None:
    digests = {"model.onnx": SHA_C, "model.joblib": SHA_B, "metadata.json": SHA_A}
    assert (
        signature_message(digests)
        == (
            f"mlops-artifact-v1\nmetadata.json {SHA_A}\nmodel.joblib {SHA_B}\nmodel.onnx {SHA_C}"
        ).encode()
    )


def test_absent_files_and_unsigned_names_are_left_out() -> None:
    digests = {"metadata.json": SHA_A, "model.joblib": SHA_B, "model.onnx": None, "x": SHA_C}
    assert (
        signature_message(digests)
        == (f"mlops-artifact-v1\nmetadata.json {SHA_A}\nmodel.joblib {SHA_B}").encode()
    )


def test_signature_document_round_trips_and_verifies() -> None:
    message = signature_message({"metadata.json": SHA_A, "model.joblib": SHA_B})
    raw = signature_document(KEY, message)
    document = json.loads(raw)
    expected = hmac.new(KEY.secret, message, hashlib.sha256).hexdigest()
    assert document == {**signing_entry(KEY), "signature": expected}
    assert signing_entry(KEY) == {"algorithm": "HMAC-SHA256", "key_id": "fake-key-2026"}
    assert raw.endswith(b"\n")
    parsed = parse_signature_document(raw)
    assert parsed == (KEY.key_id, expected)
    assert signature_matches(KEY.secret, message, parsed.signature)
    assert not signature_matches(b"another-secret", message, parsed.signature)
    assert not signature_matches(KEY.secret, message + b"\n", parsed.signature)
    assert sign(KEY.secret, message) == expected


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        (b"{not json", DocumentError, "not valid JSON"),
        (b"[]", DocumentError, "not a JSON object"),
        (b'{"pad": "' + b"x" * 5000 + b'"}', DocumentError, "larger than 4096 bytes"),
        (b'{"algorithm": "HMAC-MD5", "key_id": "k", "signature": "00"}', SignatureDocumentError,
         "'HMAC-MD5' is not supported"),
        (b'{"algorithm": "HMAC-SHA256", "key_id": "", "signature": "' + b"0" * 64 + b'"}',
         SignatureDocumentError, "has no key_id"),
        (b'{"algorithm": "HMAC-SHA256", "key_id": "k", "signature": "' + b"A" * 64 + b'"}',
         SignatureDocumentError, "no valid HMAC-SHA256 hex signature"),
        (b'{"algorithm": "HMAC-SHA256", "key_id": "k", "signature": 12}',
         SignatureDocumentError, "no valid HMAC-SHA256 hex signature"),
    ],
    ids=["not-json", "array", "huge", "md5", "empty-key-id", "upper-hex", "number"],
)  # fmt: skip
def test_malformed_signature_documents(raw: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_signature_document(raw)


def test_json_documents_must_be_objects() -> None:
    assert parse_json_object(b'{"a": 1}', "metadata.json") == {"a": 1}
    with pytest.raises(DocumentError, match=r"^metadata\.json is not a JSON object$"):
        parse_json_object(b"3", "metadata.json")
