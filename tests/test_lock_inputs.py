"""lock.json records each input as curate hashed it while reading it: the same entry a second, full read of
the input gives, with no second read."""

from __future__ import annotations

import orjson
from conftest import small_manifest, write_manifest

from curation.lock import file_entry
from curation.pipeline import run
from mixes.manifest import load_manifest


def test_locked_inputs_are_what_a_full_read_of_each_gives(tmp_path):
    body = small_manifest(tmp_path)
    run(load_manifest(write_manifest(tmp_path, body)), ["--direct_num_workers=1"], log=lambda _: None)
    lock = orjson.loads((tmp_path / "out" / "small" / "1.0.0" / "lock.json").read_bytes())
    assert len(lock["inputs"]) == 3
    # file_entry stats and hashes a file afresh, as the lock did for every input before: same bytes.
    # The lock names each input relative to the manifest's folder, here tmp_path.
    afresh = [dict(file_entry(str(tmp_path / e["uri"])), uri=e["uri"], source=e["source"]) for e in lock["inputs"]]
    assert orjson.dumps(lock["inputs"]) == orjson.dumps(afresh)
    metas = sorted((tmp_path / "out" / "_cache" / "pool").glob("*/*.meta.json"))
    recorded = {orjson.loads(m.read_bytes())["input_file"]["uri"] for m in metas}
    assert recorded == {e["uri"] for e in lock["inputs"]}
