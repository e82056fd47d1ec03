"""Beam's import in a process that imports curation first: without pandas and pymongo, which it only imports
because they are installed, and with both importable afterwards."""

from __future__ import annotations

import json
import subprocess
import sys

_CHILD = """
import json, sys
from curation.engine import pipeline_options, run_pipeline  # imports Beam
import apache_beam as beam
beam_left_out = [m for m in ("pandas", "pymongo") if m in sys.modules]
run_pipeline(
    pipeline_options([], elements=1),
    lambda p: p | beam.Create([3, 1, 2]) | beam.combiners.ToList() | beam.Map(lambda xs: print(json.dumps(sorted(xs)))),
)
import pyarrow as pa
import pandas
stamp = pa.table({"t": pa.array([1], type=pa.timestamp("ns"))}).to_pylist()[0]["t"]
print(json.dumps({"left_out": beam_left_out, "stamp": type(stamp).__module__.split(".")[0]}))
"""


def test_beam_imports_without_pandas_and_pymongo_which_import_normally_afterwards():
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True).stdout
    ran, report = out.splitlines()[-2:]
    assert json.loads(ran) == [1, 2, 3]
    assert json.loads(report) == {"left_out": [], "stamp": "pandas"}
