"""Detached containers and every lifecycle verb, on real containers: logs and rotation, exec with the
container's own confinement, stop (signal, then SIGKILL), restart, kill, rm and volumes, top, prune,
and a monitor killed with SIGKILL reconciled by ``ps``."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.engine.runtime.support import Engine, engine, probe_rootfs  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_detach_logs_and_timestamps(engine: Engine, probe_rootfs: Path) -> None:
    cid = engine.ok("run", "-d", "--name", "talker", "--rootfs", probe_rootfs, "sh", "-c",
                    "echo out1; echo err1 >&2; echo out2; sleep 30").strip()
    assert len(cid) == 64
    assert "talker" in engine.ok("ps")
    _wait_for(lambda: "out2" in engine("logs", "talker").stdout)
    proc = engine("logs", "talker")
    assert proc.stdout == "out1\nout2\n" and proc.stderr == "err1\n"
    tail = engine("logs", "--tail", "1", "talker")  # stdout and stderr interleave as they arrive
    assert (tail.stdout + tail.stderr) in ("out2\n", "err1\n")
    stamped = engine.ok("logs", "-t", "talker").splitlines()[0]
    assert stamped.endswith(" out1") and stamped[:4].isdigit() and "T" in stamped.split()[0]
    doc = engine.inspect("talker")
    assert doc["State"]["Running"] and doc["State"]["Pid"] > 0
    lines = Path(doc["LogPath"]).read_text().splitlines()
    assert json.loads(lines[0])["stream"] in ("stdout", "stderr")


def test_log_rotation(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "-d", "--name", "chatty", "--rootfs", "--log-opt", "max-size=2k", "--log-opt",
              "max-file=3", probe_rootfs, "sh", "-c", "for i in $(seq 1 300); do echo line $i; done")
    engine.ok("wait", "chatty")
    log = Path(engine.inspect("chatty")["LogPath"])
    files = sorted(log.parent.glob(log.name + "*"))
    assert len(files) == 3 and all(f.stat().st_size <= 2048 for f in files)
    out = engine.ok("logs", "chatty").splitlines()
    assert out[-1] == "line 300" and "line 1" not in out  # the oldest rotated away


def test_logs_follow_ends_with_the_container(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "-d", "--name", "short", "--rootfs", probe_rootfs, "sh", "-c",
              "sleep 0.5; echo late; sleep 0.5; echo later")
    out = engine.ok("logs", "-f", "short", timeout=60)
    assert out.endswith("late\nlater\n")


def test_exec_has_the_containers_confinement(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "-d", "--name", "host", "--rootfs", "-u", "1000", "--cap-drop", "ALL", "--cap-add",
              "KILL", "-e", "FROM_RUN=1", probe_rootfs, "sleep", "60")
    out = engine.ok("exec", "-e", "FROM_EXEC=2", "-w", "/tmp", "host", "sh", "-c",
                    "id -u; pwd; echo $FROM_RUN$FROM_EXEC; grep -E 'CapBnd|NoNewPrivs|Seccomp:' "
                    "/proc/self/status; probe syscall 1000; ps -o pid,comm | grep -c sleep")
    lines = out.splitlines()
    assert lines[:3] == ["1000", "/tmp", "12"]
    assert lines[3].split() == ["CapBnd:", "0000000000000020"]  # exactly CAP_KILL, as the container
    assert lines[4].split() == ["NoNewPrivs:", "1"] and lines[5].split() == ["Seccomp:", "2"]
    assert lines[6] == "errno=38" and lines[7] == "1"  # same filter; same PID namespace
    assert engine.ok("exec", "-u", "0", "host", "id", "-u").strip() == "0"
    assert engine("exec", "host", "sh", "-c", "exit 7").returncode == 7
    assert engine("exec", "host", "nosuch").returncode == 127
    proc = engine("exec", "-i", "host", "cat", input="piped\n")
    assert proc.stdout == "piped\n"


def test_exec_needs_a_running_container(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "--name", "done", "--rootfs", probe_rootfs, "true")
    proc = engine("exec", "done", "true")
    assert proc.returncode == 125 and "is not running" in proc.stderr


def test_stop_waits_then_kills(engine: Engine, probe_rootfs: Path) -> None:
    # sh as PID 1 has no SIGTERM handler: the kernel drops the signal, stop must fall back to SIGKILL
    engine.ok("run", "-d", "--name", "stubborn", "--rootfs", probe_rootfs, "sh", "-c", "sleep 60")
    engine.ok("stop", "-t", "1", "stubborn")
    st = engine.inspect("stubborn")["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137 and not st["Running"]


def test_stop_signal_reaches_the_command_through_init(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "-d", "--name", "polite", "--init", "--stop-signal", "SIGUSR1", "--rootfs",
              probe_rootfs, "sleep", "60")
    engine.ok("stop", "-t", "20", "polite")
    assert engine.inspect("polite")["State"]["ExitCode"] == 128 + signal.SIGUSR1


def test_kill_restart_start(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "-d", "--name", "svc", "--init", "--rootfs", probe_rootfs, "sleep", "60")
    first = engine.inspect("svc")["State"]["Pid"]
    engine.ok("restart", "-t", "5", "svc")
    doc = engine.inspect("svc")
    assert doc["State"]["Running"] and doc["State"]["Pid"] != first and doc["RestartCount"] == 1
    engine.ok("kill", "-s", "TERM", "svc")
    _wait_for(lambda: not engine.inspect("svc")["State"]["Running"])
    assert engine.inspect("svc")["State"]["ExitCode"] == 143
    assert "svc" not in engine.ok("ps") and "Exited (143)" in engine.ok("ps", "-a")
    engine.ok("start", "svc")
    assert engine.inspect("svc")["State"]["Running"]
    proc = engine("kill", "-s", "NOSUCH", "svc")
    assert proc.returncode == 1 and "invalid signal" in proc.stderr


def test_rm_keeps_volumes_unless_asked(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("volume", "create", "keep")
    engine.ok("run", "--name", "writer", "--rootfs", "-v", "keep:/data", "-v", "/scratch", probe_rootfs,
              "sh", "-c", "echo kept > /data/f; echo anon > /scratch/f")
    doc = engine.inspect("writer")
    anon = [m["Name"] for m in doc["Mounts"] if m["Destination"] == "/scratch"][0]
    proc = engine("volume", "rm", "keep")
    assert proc.returncode == 1 and "in use" in proc.stderr
    engine.ok("rm", "writer")
    assert set(engine.ok("volume", "ls", "-q").split()) == {"keep", anon}
    out = engine.ok("run", "--rm", "--rootfs", "-v", "keep:/data", probe_rootfs, "cat", "/data/f")
    assert out == "kept\n"  # the data outlived its container
    engine.ok("run", "--name", "again", "--rootfs", "-v", "/scratch", probe_rootfs, "true")
    anon2 = [m["Name"] for m in engine.inspect("again")["Mounts"] if m["Destination"] == "/scratch"][0]
    engine.ok("rm", "-v", "again")
    assert anon2 not in engine.ok("volume", "ls", "-q").split()
    pruned = json.loads(engine.ok("volume", "prune", "-o", "json"))["VolumesDeleted"]
    assert pruned == [anon] and engine.ok("volume", "ls", "-q").split() == ["keep"]


def test_volumes_from_mount_and_binds(engine: Engine, probe_rootfs: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    engine.ok("run", "--name", "donor", "--rootfs", "-v", f"{shared}:/shared", "--mount",
              "type=volume,source=vol1,target=/v", probe_rootfs, "sh", "-c", "echo d > /v/f")
    out = engine.ok("run", "--rm", "--rootfs", "--volumes-from", "donor:ro", "--mount",
                    "type=tmpfs,target=/t,tmpfs-size=1m", probe_rootfs, "sh", "-c",
                    "cat /v/f; touch /shared/x; echo rc=$?; touch /t/ok && echo tmpfs-ok")
    assert out.split() == ["d", "rc=1", "tmpfs-ok"]
    assert not (shared / "x").exists()


def test_rm_running_needs_force(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "-d", "--name", "busy", "--rootfs", probe_rootfs, "sleep", "60")
    proc = engine("rm", "busy")
    assert proc.returncode == 1 and "cannot remove running container busy" in proc.stderr
    engine.ok("rm", "-f", "busy")
    assert engine.ok("ps", "-aq") == ""


def test_top_and_prune(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "-d", "--name", "topped", "--rootfs", probe_rootfs, "sh", "-c", "sleep 60 & sleep 61")
    _wait_for(lambda: "sleep 61" in engine.ok("top", "topped"))
    rows = json.loads(engine.ok("top", "topped", "-o", "json"))
    assert {r["cmd"] for r in rows} >= {"sleep 60", "sleep 61"}
    engine.ok("run", "--name", "stopped", "--rootfs", probe_rootfs, "true")
    pruned = json.loads(engine.ok("container", "prune", "-f", "-o", "json"))["ContainersDeleted"]
    assert len(pruned) == 1 and engine.ok("ps", "-a", "--quiet").split() == [engine.inspect("topped")["Id"][:12]]


def test_killed_monitor_is_reconciled(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "-d", "--name", "orphan", "--rootfs", "-m", "64m", probe_rootfs, "sleep", "60")
    doc = engine.inspect("orphan")
    monitor, init = doc["Stockade"]["Monitor"]["Pid"], doc["State"]["Pid"]
    os.kill(monitor, signal.SIGKILL)
    _wait_for(lambda: not Path(f"/proc/{init}").exists())  # the container died with its monitor
    assert "Exited (137)" in engine.ok("ps", "-a")
    doc = engine.inspect("orphan")
    assert doc["State"]["Status"] == "exited" and "monitor exited unexpectedly" in doc["State"]["Error"]
    assert not Path(f"/sys/fs/cgroup/memory/stockade/{doc['Id']}").exists()
    engine.ok("start", "orphan")  # and it can be started again
    assert engine.inspect("orphan")["State"]["Running"]


def test_auto_remove_detached(engine: Engine, probe_rootfs: Path) -> None:
    cid = engine.ok("run", "-d", "--rm", "--rootfs", probe_rootfs, "true").strip()
    _wait_for(lambda: not (engine.root / "containers" / cid).exists())
    assert engine.ok("ps", "-aq") == ""
