"""A private containerd 1.6 for the tests: its own configuration, root, state, socket and namespace.

No systemd: the daemon is a child of the test session, started with ``STOCKADE_RUNTIME_POLICY``
pointing at a file the tests rewrite (the shim passes containerd's environment on to the runtime).
The busybox fixture image is imported with ``ctr image import`` from a docker archive made by skopeo.
``stop`` ends everything this daemon started, by process id: its tasks, its shims (found by this
daemon's socket in their command line), the daemon itself, then any mount left under its directories
and the cgroups of its namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess  # nosec B404 # containerd, ctr and skopeo with argument lists
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.oci_runtime.support import BUILTIN_POLICY, CGROUP_V1, CONTROLLERS, RUNTIME

IMAGE = "localhost/stockade/busybox:latest"
SHIM_SOCKETS = Path("/run/containerd")  # containerd 1.6 puts shim sockets in /run/containerd/s, always
CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"""


@dataclass
class Containerd:
    directory: Path
    namespace: str
    process: subprocess.Popen | None = None  # type: ignore[type-arg]
    env: dict[str, str] = field(default_factory=dict)
    made_shim_dir: bool = False

    @property
    def socket(self) -> Path:
        return self.directory / "containerd.sock"

    @property
    def policy(self) -> Path:
        return self.directory / "node-policy.yaml"

    @property
    def runc_root(self) -> Path:
        return self.directory / "runtime-state"

    def ctr(self, *args: Any, timeout: float = 120) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        return subprocess.run(["ctr", "-a", str(self.socket), "-n", self.namespace, *[str(a) for a in args]],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def run(self, cid: str, *command: str, detach: bool = False, runtime: bool = True,
            extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """``ctr run --rm`` (or ``-d``) through the runc shim, with ``stockade-runtime`` as its runc
        binary (``runtime=False``: runc itself, the peer)."""
        binary = ["--runc-binary", str(RUNTIME), "--runc-root", str(self.runc_root)] if runtime else \
            ["--runc-root", str(self.directory / "runc-state")]
        return self.ctr("run", "-d" if detach else "--rm", "--fifo-dir", self.directory / "fifo", "--runtime",
                        "io.containerd.runc.v2", *binary, *extra, IMAGE, cid, *command)

    def start(self) -> None:
        self.made_shim_dir = not SHIM_SOCKETS.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.toml"
        config.write_text(CONFIG.format(d=self.directory))
        shutil.copy(BUILTIN_POLICY, self.policy)
        self.env = {**os.environ, "STOCKADE_RUNTIME_POLICY": str(self.policy)}
        with open(self.directory / "containerd.log", "wb") as log:
            self.process = subprocess.Popen(["containerd", "--config", str(config)], stdout=log,  # nosec B603 B607
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + 30
        while self.ctr("version", timeout=10).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("containerd did not start: "
                                     + (self.directory / "containerd.log").read_text()[-2000:])
            time.sleep(0.1)

    def import_image(self, layout: Path) -> None:
        archive = self.directory / "busybox.tar"
        subprocess.run(["skopeo", "copy", "-q", f"oci:{layout}:busybox",  # nosec B603 B607
                        f"docker-archive:{archive}:{IMAGE}"], check=True, capture_output=True)
        proc = self.ctr("image", "import", archive)
        assert proc.returncode == 0, proc.stderr

    def remove(self, cid: str) -> None:
        """Take a task and its container away, whatever state they are in."""
        self.ctr("task", "kill", "-s", "SIGKILL", cid)
        for _ in range(50):
            if self.ctr("task", "delete", cid).returncode != 0:
                break
            time.sleep(0.1)
        self.ctr("container", "delete", cid)

    def _shims(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"containerd-shim" in cmdline and str(self.socket).encode() in cmdline:
                    found.append(int(entry))
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            for line in self.ctr("container", "list", "-q").stdout.split():
                self.remove(line)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in self._shims():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(str(self.directory))), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)  # nosec B603 B607
        for controller in CONTROLLERS:
            parent = CGROUP_V1 / controller / self.namespace
            if parent.is_dir():
                for child in parent.glob("*/"):
                    child.rmdir()
                parent.rmdir()
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.made_shim_dir:
            for leftover in (SHIM_SOCKETS / "s", SHIM_SOCKETS / "fifo", SHIM_SOCKETS):
                if leftover.is_dir() and not any(leftover.iterdir()):
                    leftover.rmdir()
