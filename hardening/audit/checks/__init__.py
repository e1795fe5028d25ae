"""Check implementations, one module per domain; importing the package registers them all."""

from hardening.audit.checks import containers, engine, files, host, images, ops  # noqa: F401
