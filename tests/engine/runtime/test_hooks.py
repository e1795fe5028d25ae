"""OCI hooks run as real processes: the state arrives on stdin, argv and env are the hook's own, a
failure or a timeout is an error quoting the hook's output, and a hook never blocks on its stdin."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.runtime import hooks
from engine.spec import Hook

STATE = json.dumps({"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 42, "bundle": "/b"}).encode()


def test_state_on_stdin_args_and_env(tmp_path: Path) -> None:
    out = tmp_path / "out"
    hooks.run(Hook("/bin/sh", ["sh", "-c", f'cat > {out}; echo "$0 $1 $STAGE" >> {out}', "arg0", "one"],
                   ["STAGE=prestart"]), STATE, "prestart")
    state, extra = out.read_text().split("}", 1)
    assert json.loads(state + "}")["pid"] == 42
    assert extra.strip() == "arg0 one prestart"


def test_failure_names_the_hook_and_quotes_its_output() -> None:
    with pytest.raises(hooks.HookError, match=r"createRuntime hook /bin/sh failed \(exit status 3\): boom"):
        hooks.run(Hook("/bin/sh", ["sh", "-c", "echo boom >&2; exit 3"]), STATE, "createRuntime")


def test_missing_program() -> None:
    with pytest.raises(hooks.HookError, match="exit status 127.*cannot execute /nonexistent/hook"):
        hooks.run(Hook("/nonexistent/hook"), STATE, "poststop")


def test_timeout_kills_the_hook() -> None:
    began = time.monotonic()
    with pytest.raises(hooks.HookError, match="prestart hook /bin/sh timed out after 1s"):
        hooks.run(Hook("/bin/sh", ["sh", "-c", "exec sleep 30"], timeout=1), STATE, "prestart")
    assert time.monotonic() - began < 20


def test_a_hook_that_ignores_a_large_state_does_not_block(tmp_path: Path) -> None:
    big = json.dumps({"annotations": {f"k{i}": "v" * 100 for i in range(2000)}}).encode()  # > a pipe buffer
    hooks.run(Hook("/bin/true"), big, "poststart")


def test_run_all_stops_at_the_first_failure(tmp_path: Path) -> None:
    marker = tmp_path / "second"
    with pytest.raises(hooks.HookError):
        hooks.run_all([Hook("/bin/false"), Hook("/bin/sh", ["sh", "-c", f"touch {marker}"])], STATE, "prestart")
    assert not marker.exists()
