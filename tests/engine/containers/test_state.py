"""Liveness is pid plus start time, so a reused pid is never mistaken for our process."""

from __future__ import annotations

import os
import subprocess

from engine.containers import state


def test_start_time_and_alive() -> None:
    me = state.start_time(os.getpid())
    assert me is not None and state.alive(os.getpid(), me)
    assert not state.alive(os.getpid(), me + 1)
    proc = subprocess.Popen(["sleep", "0"])
    started = state.start_time(proc.pid)
    proc.wait()
    assert not state.alive(proc.pid, started)


def test_running_and_exited_records() -> None:
    doc = {"State": state.initial(), "Stockade": {}}
    state.mark_running(doc, os.getpid(), os.getpid())
    assert state.is_running(doc) and state.init_alive(doc)
    state.mark_exited(doc, 137, oom=True)
    assert not state.is_running(doc)
    assert doc["State"]["OOMKilled"] and doc["State"]["ExitCode"] == 137
