"""Run the real ``stockade`` command line in a child process, as a user would."""

from __future__ import annotations

import os
import subprocess  # nosec B404 # runs our own CLI with an argument list
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def stockade(*args: str | os.PathLike[str], root: Path | None = None, input: str | bytes | None = None,
             env: dict[str, str] | None = None, timeout: float = 300,
             text: bool = True) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """``stockade [--root ROOT] ARGS…``; never raises on a non-zero exit (tests check returncode)."""
    argv = [sys.executable, "-m", "stockade"]
    if root is not None:
        argv += ["--root", str(root)]
    argv += [str(a) for a in args]
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    if isinstance(input, str) and not text:
        input = input.encode()
    return subprocess.run(argv, input=input, capture_output=True, text=text, env=full_env,  # nosec B603
                          timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
