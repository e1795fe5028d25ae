"""Running OCI hooks: a program gets the container's state as JSON on stdin and must exit 0 in time.

One runner serves every stage. The caller (``stockade-runtime``) runs the hooks that belong to the
runtime's namespaces (``prestart``, ``createRuntime``, ``poststart``, ``poststop``); the container's
init runs ``createContainer`` (before pivot_root, so the path resolves on the host) and
``startContainer`` (just before exec, resolved in the container). That is why everything here is
imported at the top and uses only ``os`` and ``select``: after pivot_root no module can be imported.

The state is handed over in a sealed memfd rather than a pipe, so a hook that never reads stdin
cannot block the runtime, and a large state (many annotations) needs no writer loop. The hook's
stdout and stderr go to a pipe the runner reads (bounded): the text is the error message when the
hook fails, and it never mixes with the container's own output, which shares the runtime's stdio.
"""

from __future__ import annotations

import os
import select
import signal
import time

from engine.errors import StockadeError
from engine.spec import Hook

OUTPUT_LIMIT = 4096  # bytes of a failed hook's output quoted in the error


class HookError(StockadeError):
    """A hook failed, timed out or could not be started."""

    exit_code = 125


def _state_fd(state: bytes) -> int:
    fd = os.memfd_create("oci-state", os.MFD_CLOEXEC)
    os.write(fd, state)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _child(hook: Hook, state_fd: int, out_w: int) -> None:  # pragma: no cover - becomes the hook
    try:
        os.dup2(state_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.closerange(3, 1 << 20)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        args = hook.args or [hook.path]
        os.execve(hook.path, args, dict(e.split("=", 1) for e in hook.env if "=" in e))
    except OSError as exc:
        os.write(2, f"cannot execute {hook.path}: {exc.strerror}\n".encode())
    os._exit(127)


def run(hook: Hook, state: bytes, stage: str) -> None:
    """Run ``hook`` with ``state`` on stdin; raise HookError unless it exits 0 within its timeout."""
    state_fd = _state_fd(state)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            _child(hook, state_fd, out_w)
    finally:
        os.close(state_fd)
        os.close(out_w)
    output = bytearray()
    deadline = None if not hook.timeout else time.monotonic() + hook.timeout
    timed_out = False
    try:
        poller = select.poll()
        poller.register(out_r, select.POLLIN | select.POLLHUP)
        while True:
            wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not poller.poll(wait_ms):
                timed_out = True
                break
            data = os.read(out_r, 65536)
            if not data:
                break  # the hook (and anything it left running) closed its output
            if len(output) < OUTPUT_LIMIT:
                output += data[:OUTPUT_LIMIT - len(output)]
    finally:
        os.close(out_r)
    if timed_out:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    text = output.decode("utf-8", "replace").strip()
    if timed_out:
        raise HookError(f"{stage} hook {hook.path} timed out after {hook.timeout}s"
                        + (f": {text}" if text else ""))
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        raise HookError(f"{stage} hook {hook.path} failed ({how})" + (f": {text}" if text else ""))


def run_all(hooks: list[Hook], state: bytes, stage: str) -> None:
    """Run ``hooks`` in order; the first failure stops the rest (the stages that must abort)."""
    for hook in hooks:
        run(hook, state, stage)
