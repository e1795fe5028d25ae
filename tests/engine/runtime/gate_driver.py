"""A builder process for ``test_start_gate``: launches one container in create-then-start mode.

Run as ``python -m tests.engine.runtime.gate_driver ROOTFS WORKDIR MODE`` (a child process, because
``launch`` makes its caller a child subreaper). It prints one JSON line describing what it saw: the
init's state before ``start`` (still this interpreter, blocked, not exec'd), the container's output,
its exit code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from engine.runtime.launcher import LaunchConfig, StartGate, launch
from engine.runtime.process import Stdio
from engine.spec import CapabilitySets, Hook, Hooks, Mount, Process, Root, Spec

CAPS = CapabilitySets(bounding=["CAP_KILL"], effective=["CAP_KILL"], permitted=["CAP_KILL"])


def _spec(rootfs: str, work: Path, mode: str) -> Spec:
    spec = Spec(process=Process(args=["sh", "-c", "echo ran as $(id -u); hostname"], user="0:0",
                                capabilities=CAPS, no_new_privileges=True),
                root=Root(path=rootfs, readonly=True), hostname="alpha",
                namespaces=["mount", "pid", "uts", "ipc", "network"],
                mounts=[Mount("/out", "bind", str(work / "out"), ["rbind", "rw"])])
    if mode == "hooks":
        spec.hooks = Hooks(
            create_container=[Hook("/bin/sh", ["sh", "-c", f"cat > {work / 'out' / 'create.json'}"])],
            start_container=[Hook("/bin/sh", ["sh", "-c", "cat > /out/start.json; grep CapEff /proc/self/status"
                                                          " >> /out/start.caps"])])
    if mode == "missing":
        spec.process.args = ["/no/such/program"]
    if mode.startswith("join:"):
        spec.namespaces = ["mount", "pid", "ipc", "network"]
        spec.hostname = ""
        spec.namespace_paths = {"uts": f"/proc/{mode.split(':')[1]}/ns/uts"}
    return spec


def main() -> None:
    rootfs, work, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    (work / "out").mkdir(exist_ok=True)
    fifo = work / f"exec.fifo.{os.getpid()}"
    os.mkfifo(fifo, 0o622)
    read_end, write_end = os.pipe()
    report: dict[str, object] = {}
    try:
        started = launch(LaunchConfig(spec=_spec(rootfs, work, mode), mountpoint=rootfs,
                                      stdio=Stdio(None, write_end, write_end), gate=StartGate(str(fifo)),
                                      hook_state={"ociVersion": "1.0.2", "id": "gate-test"}))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        print(json.dumps({"error": str(exc), "code": getattr(exc, "exit_code", None)}))
        return
    os.close(write_end)
    pid = started.pid
    report["pid"] = pid
    time.sleep(0.2)  # the init is blocked on the fifo: it must not have exec'd
    report["before_start"] = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    if mode == "hold":
        print(json.dumps(report), flush=True)
        sys.stdin.readline()  # the test joins our container's namespaces meanwhile
    fd = os.open(fifo, os.O_RDONLY)
    report["fifo"] = os.read(fd, 1).decode()
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    report["exit"] = os.waitstatus_to_exitcode(status)
    with os.fdopen(read_end) as f:
        report["output"] = f.read()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
