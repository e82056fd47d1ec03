"""curation: raw corpora to tokenized pretraining mixes, on Apache Beam (OLMo 2 / Dolma style)."""

__version__ = "0.2.0"
