"""Beam's check for an IPython session, answered without importing IPython.

Beam 2.77 asks whether it runs inside IPython for every transform a pipeline applies (to relabel it after the
notebook cell) and at every run, by importing IPython and asking for its shell: when IPython is installed,
the first question imports it, about 0.3 CPU s of every run. A process that has not imported IPython runs
no IPython session, so the answer is no without the import; a process that has imported it gets Beam's own
answer.
"""

from __future__ import annotations

import sys

from apache_beam import pipeline
from apache_beam.utils import interactive_utils

_beams_check = interactive_utils.is_in_ipython


def _in_ipython() -> bool:
    return "IPython" in sys.modules and _beams_check()


def install() -> None:
    """Answer Beam's check so in this process (idempotent). `interactive_utils` calls it by its module-level
    name (labels, notebooks), and `apache_beam.pipeline` imported it by name (runs)."""
    interactive_utils.is_in_ipython = _in_ipython
    pipeline.is_in_ipython = _in_ipython
