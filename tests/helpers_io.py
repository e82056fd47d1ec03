"""Shared test helpers for storage, readers and writers: data paths, a SourceConfig builder and an
S3 fixture backed by moto in server mode on loopback (real HTTP through boto3, nothing patched)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curation import storage
from curation.document import Document, Quarantine
from mixes.manifest import SourceConfig

REPO_DATA = Path(__file__).resolve().parents[1] / "data" / "io"
SHARED_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def shared_corpus(relative: str) -> Path:
    path = SHARED_CORPORA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared not available)")
    return path


def source(**overrides) -> SourceConfig:
    settings = {"name": "test", "paths": ["unused"], **overrides}
    return SourceConfig(**settings)


def split(items) -> tuple[list[Document], list[Quarantine]]:
    items = list(items)
    return [i for i in items if isinstance(i, Document)], [i for i in items if isinstance(i, Quarantine)]


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on a free loopback port, with boto3 pointed at it for the module's tests."""
    from moto.server import ThreadedMotoServer

    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    storage.configure_s3(endpoint_url=endpoint)
    yield endpoint
    storage.configure_s3()
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_endpoint, request):
    """A fresh bucket named after the test; yields its s3:// URI."""
    import boto3

    name = request.node.name.lower().replace("_", "-")[:50].strip("-")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=name)
    return f"s3://{name}"
