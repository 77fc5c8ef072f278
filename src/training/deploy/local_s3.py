"""A throwaway S3-compatible server (moto) on 127.0.0.1 and the Metaflow settings that use it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# moto accepts any credentials; these only keep boto3 from looking for real ones (not secrets).
MOTO_PLACEHOLDER = "testing"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": MOTO_PLACEHOLDER,
    "AWS_SECRET_ACCESS_KEY": MOTO_PLACEHOLDER,
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class LocalS3:
    """Where the local server listens and the bucket created on it."""

    endpoint_url: str
    bucket: str

    @property
    def sysroot(self) -> str:
        """The Metaflow datastore root (code packages, artifacts, IncludeFile uploads)."""
        return f"s3://{self.bucket}/metaflow"

    def metaflow_env(self) -> dict[str, str]:
        """Environment that points Metaflow's datastore and code package at this server."""
        return {
            **DUMMY_CREDENTIALS,
            "METAFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "METAFLOW_DATASTORE_SYSROOT_S3": self.sysroot,
            "METAFLOW_DATATOOLS_S3ROOT": f"s3://{self.bucket}/data",
            # Metaflow's S3 client retries a failing endpoint for minutes; fail fast here.
            "METAFLOW_S3_RETRY_COUNT": "1",
        }

    def client(self) -> object:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def read(self, url: str) -> bytes:
        """The bytes of ``s3://bucket/key`` on this server."""
        bucket, _, key = url.removeprefix("s3://").partition("/")
        response = self.client().get_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
        return response["Body"].read()


@contextmanager
def local_s3(bucket: str = "metaflow-local") -> Iterator[LocalS3]:
    """Run moto's S3 server on a free 127.0.0.1 port with ``bucket`` created; always stopped."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = LocalS3(endpoint_url=f"http://{host}:{port}", bucket=bucket)
        s3.client().create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        yield s3
    finally:
        server.stop()
