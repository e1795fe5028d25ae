"""Stockade: run container images you can prove are genuine, under hardening you can prove is applied."""

__version__ = "0.1.0"
