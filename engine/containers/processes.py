"""``top``: the processes of a running container, found through its PID namespace.

A process belongs to the container when its ``/proc/PID/ns/pid`` is the init's: that holds for
processes started by ``exec`` too, and needs no cgroup (rootless containers on cgroup v1 have none).
"""

from __future__ import annotations

import os
import time
from typing import Any

from engine.containers import state


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _row(pid: int, boot: float, ticks: int) -> dict[str, Any] | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return None
    started = state.start_time(pid) or 0
    stime = time.strftime("%H:%M", time.localtime(boot + started / ticks))
    return {"uid": status.get("Uid", "").split()[0] if status.get("Uid") else "", "pid": pid,
            "ppid": int(status.get("PPid", "0").strip() or 0), "stime": stime,
            "cmd": cmdline or f"[{status.get('Name', '').strip()}]"}


def list_processes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if not state.is_running(doc) or not state.init_alive(doc):
        from engine.containers.store import ContainerError

        raise ContainerError(f"container {doc['Name'].lstrip('/')} is not running")
    try:
        target = os.stat(f"/proc/{doc['State']['Pid']}/ns/pid")
    except OSError:
        return []
    boot, ticks = _boot_time(), os.sysconf("SC_CLK_TCK")
    rows = []
    for entry in os.listdir("/proc"):
        if not (entry.isascii() and entry.isdigit()):
            continue
        try:
            ns = os.stat(f"/proc/{entry}/ns/pid")
        except OSError:
            continue
        if (ns.st_dev, ns.st_ino) == (target.st_dev, target.st_ino):
            row = _row(int(entry), boot, ticks)
            if row is not None:
                rows.append(row)
    return sorted(rows, key=lambda r: r["pid"])
