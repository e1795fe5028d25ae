"""The runtime log, in runc's two formats: where a caller learns why an operation failed.

containerd's shim passes ``--log <bundle>/log.json --log-format json`` and, when a verb exits non-zero,
reports the ``msg`` of the last ``"level":"error"`` line; conmon and podman do the same with their own
path. So every line is one JSON object ``{"level","msg","time"}`` (RFC 3339 time, logrus's level
names: ``debug``, ``info``, ``warning``, ``error``), appended with a single ``write`` so concurrent
verbs never interleave within a line. The text format is logrus's ``time="…" level=… msg="…"``.
Without ``--log`` the lines go to stderr. ``debug`` lines are written only with ``--debug``.

Errors are also printed to stderr as one plain line (runc does both), because a person running the
runtime by hand reads stderr, not the log.
"""

from __future__ import annotations

import json
import os
import sys
import time

LEVELS = ("debug", "info", "warning", "error")


def timestamp() -> str:
    """Local time in RFC 3339 with nanoseconds and the UTC offset, as logrus writes it."""
    ns = time.time_ns()
    local = time.localtime(ns // 1_000_000_000)
    offset = time.strftime("%z", local)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{ns % 1_000_000_000:09d}"
            + f"{offset[:3]}:{offset[3:]}")


class RuntimeLog:
    """Where this invocation's lines go; cheap to create (the file is opened on the first line)."""

    def __init__(self, path: str | None = None, fmt: str = "text", *, debug: bool = False) -> None:
        self.path = path or None
        self.fmt = fmt
        self.debug_enabled = debug
        self._fd: int | None = None

    def _line(self, level: str, msg: str) -> bytes:
        if self.fmt == "json":
            return (json.dumps({"level": level, "msg": msg, "time": timestamp()}) + "\n").encode()
        quoted = msg.replace("\\", "\\\\").replace('"', '\\"')
        return f'time="{timestamp()}" level={level} msg="{quoted}"\n'.encode()

    def write(self, level: str, msg: str) -> None:
        if level == "debug" and not self.debug_enabled:
            return
        line = self._line(level, msg)
        if self.path is None:
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
            return
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.write(self._fd, line)
        except OSError as exc:
            sys.stderr.write(f"stockade-runtime: cannot write the log {self.path}: {exc.strerror}\n")

    def debug(self, msg: str) -> None:
        self.write("debug", msg)

    def info(self, msg: str) -> None:
        self.write("info", msg)

    def warning(self, msg: str) -> None:
        self.write("warning", msg)

    def error(self, msg: str) -> None:
        """An operation failed: the log line the caller reads, and one plain line on stderr."""
        if self.path is not None:
            self.write("error", msg)
        sys.stderr.write(f"{msg}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
