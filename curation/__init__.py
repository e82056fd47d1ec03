"""curation: raw corpora to tokenized pretraining mixes, on Apache Beam (OLMo 2 / Dolma style)."""

from curation import beam_extras

__version__ = "0.2.0"

beam_extras.hide_while_beam_imports()
