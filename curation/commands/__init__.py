"""Subcommands of the `curation` command; each exposes `add_parser(subparsers)`."""
