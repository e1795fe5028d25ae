"""``--init``: a minimal PID 1 that starts the command, forwards signals to it, and reaps orphans.

A program that was never written to be PID 1 ignores SIGTERM (the kernel drops signals PID 1 has no
handler for) and leaves zombies behind; this init fixes both, as tini does for Docker. It is the
container's init process itself continuing after set-up, already confined exactly like the command
(same user, capabilities, no_new_privs and seccomp filter), and non-dumpable so the container's
processes cannot inspect or trace it. When the command exits, init exits with the command's status
(128+N for a signal), and the kernel then kills whatever else is left in the PID namespace.
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Iterable

FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM, signal.SIGPWR)
IGNORED = (signal.SIGTTIN, signal.SIGTTOU, signal.SIGTSTP)


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N for a signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def forward_signals(pid: int, signals: Iterable[int]) -> None:
    """Pass each of ``signals`` this process receives on to ``pid`` (already gone: nothing to do)."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in signals:
        signal.signal(sig, forward)


def run_init(start_child: Callable[[], None], *, terminal: bool,
             after_fork: Callable[[], None]) -> int:
    """Fork the command (``start_child`` execs it) and supervise it; return its exit code."""
    child = os.fork()
    if child == 0:  # pragma: no cover - becomes the command
        os.setpgid(0, 0)
        start_child()
        os._exit(127)
    after_fork()
    try:
        os.setpgid(child, child)
    except OSError:
        pass  # the child already exec'd (and set its own group) or already exited
    if terminal:
        try:
            os.tcsetpgrp(0, child)
        except OSError:
            pass
    forward_signals(child, FORWARDED)
    for sig in IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if pid == child:
            return exit_code(status)
