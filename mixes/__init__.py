"""Mixes: manifest schema and versioning, sampling to token budgets, tokenization, shard writing."""
