"""A finished release read where it lives, a local folder or an S3 prefix: what the commands that take an
output folder (diff, regenerate) need beyond the storage layer."""

from __future__ import annotations

import os
import tempfile

from curation import storage
from curation.errors import InputError
from curation.layout import RunLayout
from mixes.manifest import LoadedManifest, load_manifest


def load_manifest_copy(root: str) -> LoadedManifest:
    """The manifest copy of the release at `root`. The manifest loader reads local files, so an S3 copy is
    fetched into a temporary folder first (a manifest is a few kilobytes)."""
    copy = RunLayout.from_root(root).manifest_copy
    if not storage.is_s3(copy):
        return load_manifest(copy)
    if not storage.exists(copy):
        raise InputError(f"{root}: no manifest.yaml here; give a finished output (<output.path>/<name>/<version>)")
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, os.path.basename(copy))
        with storage.open_binary(copy) as f, open(local, "wb") as out:
            out.write(f.read())
        return load_manifest(local)
