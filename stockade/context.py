"""What every command handler receives: parsed arguments, the effective configuration and paths."""

from __future__ import annotations

import argparse
from functools import cached_property

from engine.config import Config, Paths, load_config
from engine.records import Record


class Context(Record):
    """Per-invocation state. Configuration is read once, on first use, so ``--version`` and
    ``--help`` work even when a configuration file is broken."""

    args: argparse.Namespace

    @cached_property
    def config(self) -> Config:
        return load_config(getattr(self.args, "config", None))

    @cached_property
    def paths(self) -> Paths:
        storage = self.config.storage
        root = getattr(self.args, "root", None) or storage.root
        runroot = getattr(self.args, "runroot", None) or storage.runroot
        return Paths.default(root=root, runroot=runroot)

    @property
    def output(self) -> str:
        return getattr(self.args, "output", "table")

    @property
    def debug(self) -> bool:
        return bool(getattr(self.args, "debug", False))
