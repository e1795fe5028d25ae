"""A container's ``State`` (Docker's shape) and how Stockade tells whether it is really running.

A pid alone proves nothing after a reboot or once the kernel reuses it, so the record keeps each
process's start time (field 22 of ``/proc/PID/stat``) beside its pid: a process is the one we started
only if both match. The monitor (the process that holds a container) records the exit; if the monitor
itself died (``kill -9``), the container died with it (its init has PR_SET_PDEATHSIG), and the next
command that looks (``ps``, ``inspect``, ``start``) reconciles the record: see ``lifecycle.reconcile``.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: stockade-runtime's light verbs
if TYPE_CHECKING:      # read liveness through this module
    from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"


def now() -> str:
    """UTC, RFC 3339 with nanoseconds, as Docker writes times."""
    t = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1_000_000_000)) + f".{t % 1_000_000_000:09d}Z"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int, started: int | None) -> bool:
    if pid <= 0 or started is None:
        return False
    current = start_time(pid)
    return current is not None and current == started


def initial() -> dict[str, Any]:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


def mark_running(doc: dict[str, Any], pid: int, monitor_pid: int) -> None:
    doc["State"].update({"Status": "running", "Running": True, "Pid": pid, "ExitCode": 0,
                         "OOMKilled": False, "Error": "", "StartedAt": now(),
                         "FinishedAt": ZERO_TIME})
    doc["Stockade"]["Monitor"] = {"Pid": monitor_pid, "Start": start_time(monitor_pid)}
    doc["Stockade"]["InitStart"] = start_time(pid)


def mark_exited(doc: dict[str, Any], exit_code: int, *, oom: bool = False, error: str = "") -> None:
    doc["State"].update({"Status": "exited", "Running": False, "Pid": 0, "ExitCode": exit_code,
                         "OOMKilled": oom, "Error": error, "FinishedAt": now()})
    doc["Stockade"]["Monitor"] = None


def is_running(doc: dict[str, Any]) -> bool:
    """Whether the record's container is running now (its monitor is alive)."""
    monitor = doc.get("Stockade", {}).get("Monitor")
    return bool(doc["State"].get("Running")) and bool(monitor) and alive(monitor["Pid"], monitor["Start"])


def init_alive(doc: dict[str, Any]) -> bool:
    return alive(int(doc["State"].get("Pid") or 0), doc.get("Stockade", {}).get("InitStart"))
