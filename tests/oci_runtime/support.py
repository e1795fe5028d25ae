"""Driving the real ``stockade-runtime`` console script as its callers do, and making bundles.

``Runtime`` runs the installed entry point (``.venv/bin/stockade-runtime``, what ``make setup`` makes)
with a test's own ``--root`` and a JSON ``--log``, always naming the node policy (``--node-policy``)
so a file in /etc never changes a test. ``create`` goes through ``reaper`` (a minimal shim: a
subreaper that collects the init's exit status once it re-parents), because ``create`` exits and
leaves the init to whoever supervises it. Bundles are a busybox root filesystem with a
``config.json`` from ``runc spec`` or ``crun spec`` (the real tools), adjusted per test.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 # the runtime, runc and crun are run with argument lists
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cli import REPO
from tests.support.images import populate_busybox_rootfs

RUNTIME = REPO / ".venv" / "bin" / "stockade-runtime"
BUILTIN_POLICY = REPO / "stockade" / "oci_runtime" / "default-node-policy.yaml"
CGROUP_PARENT = "stockade-oci-test"
CGROUP_V1 = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu")


def new_id() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def tool_spec(tool: str, directory: Path) -> dict[str, Any]:
    """The default ``config.json`` of ``runc spec`` or ``crun spec``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").unlink(missing_ok=True)
    subprocess.run([tool, "spec"], cwd=directory, check=True, capture_output=True)  # nosec B603
    return dict(json.loads((directory / "config.json").read_text()))


def make_bundle(directory: Path, config: dict[str, Any]) -> Path:
    """A bundle at ``directory``: a fresh busybox root filesystem and ``config``."""
    rootfs = directory / "rootfs"
    if not rootfs.exists():
        rootfs.mkdir(parents=True)
        populate_busybox_rootfs(rootfs)
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    return directory


def command_config(directory: Path, *args: str, tool: str = "runc", cid: str | None = None) -> dict[str, Any]:
    """``tool spec``'s configuration running ``args`` without a terminal, in the test's cgroup parent."""
    config = tool_spec(tool, directory)
    config["process"]["terminal"] = False
    config["process"]["args"] = list(args)
    config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid or new_id()}"
    return config


@dataclass
class Created:
    """A container made by ``create`` under the test shim."""

    cid: str
    pid: int
    shim: subprocess.Popen  # type: ignore[type-arg]
    out: Path
    status_file: Path

    def wait(self, timeout: float = 60) -> int:
        """The init's exit code, once it has exited and the shim reaped it."""
        self.shim.wait(timeout=timeout)
        for line in self.status_file.read_text().splitlines():
            pid, code = line.split()
            if int(pid) == self.pid:
                return int(code)
        raise AssertionError(f"the init {self.pid} was not reaped: {self.status_file.read_text()!r}")

    def output(self) -> str:
        return self.out.read_text()


class Runtime:
    """``stockade-runtime`` with one test's root, log and node policy."""

    def __init__(self, work: Path, policy: Path = BUILTIN_POLICY) -> None:
        self.work = work
        self.root = work / "state"
        self.log = work / "runtime.log"
        self.policy = policy

    def argv(self, *args: Any, debug: bool = False, flags: tuple[str, ...] = ()) -> list[str]:
        """The command line: this runtime's global flags (plus ``flags``), then ``args``."""
        if not RUNTIME.exists():
            raise AssertionError(f"{RUNTIME} is missing: run `make setup` (it installs the console script)")
        return [str(RUNTIME), "--root", str(self.root), "--log", str(self.log), "--log-format", "json",
                *(["--debug"] if debug else []), *flags, "--node-policy", str(self.policy),
                *[str(a) for a in args]]

    @staticmethod
    def env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "STOCKADE_RUNTIME_POLICY"}

    def __call__(self, *args: Any, timeout: float = 60, debug: bool = False,
                 **kw: Any) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.argv(*args, debug=debug), capture_output=True, text=True,  # nosec B603
                               timeout=timeout, env=self.env(), **kw)

    def ok(self, *args: Any, **kw: Any) -> str:
        proc = self(*args, **kw)
        assert proc.returncode == 0, f"{args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return str(proc.stdout)

    def state(self, cid: str) -> dict[str, Any]:
        return dict(json.loads(self.ok("state", cid)))

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def create(self, bundle: Path, cid: str, *extra: Any, debug: bool = False,
               flags: tuple[str, ...] = ()) -> Created:
        """``create`` under the test shim; returns once the pid file is written (or fails)."""
        out = self.work / f"{cid}.out"
        status_file = self.work / f"{cid}.status"
        pid_file = self.work / f"{cid}.pid"
        with open(out, "wb") as sink:
            shim = subprocess.Popen(  # nosec B603
                [sys.executable, "-m", "tests.oci_runtime.reaper", str(status_file), "--",
                 *self.argv("create", "--bundle", bundle, "--pid-file", pid_file, *extra, cid, debug=debug,
                            flags=flags)],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                env={**self.env(), "PYTHONPATH": str(REPO)}, cwd=bundle)
        deadline = time.monotonic() + 60
        while not pid_file.exists():
            if shim.poll() is not None or (status_file.exists() and status_file.read_text().strip()):
                if not pid_file.exists():
                    shim.wait(timeout=60)
                    raise AssertionError(f"create failed: {out.read_text()}")
            if time.monotonic() > deadline:
                shim.kill()
                raise AssertionError("create did not finish")
            time.sleep(0.01)
        return Created(cid, int(pid_file.read_text()), shim, out, status_file)

    def cleanup(self) -> None:
        """Delete what a test left, then check nothing of it remains (state, cgroups)."""
        for entry in sorted(self.root.glob("[!.]*")) if self.root.exists() else []:
            self("delete", "--force", entry.name)
            assert not entry.exists(), f"state of {entry.name} left behind"
            for controller in CONTROLLERS:
                leftover = CGROUP_V1 / controller / CGROUP_PARENT / entry.name
                assert not leftover.exists(), f"cgroup {leftover} left behind"


def remove_cgroup_parent(name: str = CGROUP_PARENT) -> None:
    """Remove the tests' (now empty) cgroup parent in every v1 hierarchy."""
    for controller in CONTROLLERS:
        path = CGROUP_V1 / controller / name
        if path.is_dir():
            for child in sorted(path.glob("*/"), reverse=True):
                if (child / "cgroup.procs").exists():
                    child.rmdir()
            path.rmdir()
