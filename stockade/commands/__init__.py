"""Verb modules of the command line; each exposes ``register(subparsers)``."""
