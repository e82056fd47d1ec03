"""Beam's check for an IPython session costs no import of IPython in a process that never imported it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_CHILD = """
import json, sys
import apache_beam as beam
from curation.engine import pipeline_options, run_pipeline
run_pipeline(
    pipeline_options([], elements=1),
    lambda p: p | beam.Create([3, 1, 2]) | beam.combiners.ToList() | beam.Map(lambda xs: print(json.dumps(sorted(xs)))),
)
from apache_beam.utils import interactive_utils
print(json.dumps({"imported": "IPython" in sys.modules, "in_ipython": interactive_utils.is_in_ipython()}))
import IPython
print(json.dumps({"in_ipython": interactive_utils.is_in_ipython()}))
"""


def test_a_pipeline_runs_without_importing_ipython_and_beam_still_answers_once_it_is_imported():
    pytest.importorskip("IPython")
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True).stdout
    ran, before, after = out.splitlines()[-3:]
    assert json.loads(ran) == [1, 2, 3]
    assert json.loads(before) == {"imported": False, "in_ipython": False}
    assert json.loads(after) == {"in_ipython": False}  # imported, but no IPython shell runs here
