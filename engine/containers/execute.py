"""``exec``: run one more command in a running container, with the container's own confinement.

The process gets the container's spec (capability sets, no_new_privs, seccomp program, rlimits), with
only what ``exec`` may change replaced: the command, extra environment, the user, the working
directory and whether it has a terminal. The caller waits for it (forwarding signals, or relaying a
pty) and gets its exit code, unless ``-d`` asked to leave it running.
"""

from __future__ import annotations

import os
import signal

from engine.config import Paths
from engine.containers import state
from engine.containers.create import merge_env
from engine.containers.lifecycle import current, recorded_cgroup
from engine.containers.monitor import FORWARDED, attach, load_spec, read_program
from engine.containers.store import ContainerError, ContainerStore
from engine.records import Record, field, replace
from engine.runtime.execin import join
from engine.runtime.init import exit_code
from engine.runtime.process import Stdio, caller_terminal


class ExecOptions(Record):
    command: list[str]
    env: list[str] = field(default_factory=list)
    user: str | None = None
    workdir: str | None = None
    interactive: bool = False
    tty: bool = False
    detach: bool = False


def exec_in(paths: Paths, store: ContainerStore, ref: str, opts: ExecOptions) -> int:
    doc = current(store, ref)
    if not state.is_running(doc) or not state.init_alive(doc):
        raise ContainerError(f"container {doc['Name'].lstrip('/')} is not running")
    spec = load_spec(store, doc["Id"])
    proc = replace(
        spec.process, args=opts.command, env=merge_env(spec.process.env, opts.env),
        user=opts.user if opts.user is not None else spec.process.user,
        cwd=opts.workdir or spec.process.cwd, terminal=opts.tty and not opts.detach, init=False)
    stdio = Stdio(stdin=0 if opts.interactive and not opts.detach else None)
    if opts.detach:
        null = os.open(os.devnull, os.O_WRONLY)
        stdio.stdout = stdio.stderr = null
    cgroup = recorded_cgroup(doc)
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        started = join(int(doc["State"]["Pid"]), proc, hostname=spec.hostname, stdio=stdio,
                       cgroup=cgroup, program=read_program(spec),
                       winsize_from=caller_terminal() if proc.terminal else None)
        if opts.detach:
            return 0
        return exit_code(attach(started, interactive=opts.interactive))
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
