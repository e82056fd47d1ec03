"""Optional packages Beam imports whenever they are installed, kept out of Beam's import in this process.

Beam 2.77 imports pandas (to register its DataFrame type hints and pandas-based CSV/JSON transforms) and
pymongo (for MongoDB IO) at `import apache_beam`, each inside `try: ... except ImportError`: about 0.3 CPU s
of every run's 1.1 s of Beam import, for modules curation never uses. While Beam's own import runs, they
look absent to it; afterwards they import normally for anyone who asks (pyarrow still hands pandas
Timestamps over when pandas is installed). A process that imported them, or Beam, before curation is left
as it is.
"""

from __future__ import annotations

import logging
import sys
from importlib.abc import MetaPathFinder

_HIDDEN = ("pandas", "pymongo")


def _beam_importing() -> bool:
    beam = sys.modules.get("apache_beam")
    return beam is not None and bool(getattr(beam.__spec__, "_initializing", False))


class _HiddenWhileBeamImports(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in _HIDDEN and _beam_importing():
            raise ModuleNotFoundError(f"{name} is not given to Beam's import (curation.beam_extras)", name=name)
        return None  # the next finder looks


def hide_while_beam_imports() -> None:
    """Install the hiding for the coming import of Beam, unless Beam is imported already (idempotent)."""
    if "apache_beam" in sys.modules or any(isinstance(f, _HiddenWhileBeamImports) for f in sys.meta_path):
        return
    # Beam's MongoDB IO says at import that it cannot work without pymongo; curation has no use for it.
    logging.getLogger("apache_beam.io.mongodbio").setLevel(logging.ERROR)
    sys.meta_path.insert(0, _HiddenWhileBeamImports())
