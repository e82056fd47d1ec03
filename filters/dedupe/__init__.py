"""Deduplication: exact, URL, paragraph and MinHash-LSH fuzzy, as Beam transforms over compact keys."""
