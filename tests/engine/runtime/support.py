"""Shared fixtures for tests that start real containers.

``probe_rootfs``: a busybox root filesystem (``tests.support.images``) plus ``/bin/probe``, a static
C program that makes one raw system call and prints ``ok`` or ``errno=N`` (seccomp's EPERM versus the
stub's ENOSYS, mount, unshare, ptrace). ``engine``: the real CLI bound to a fresh store root; on
teardown it force-removes every container the test left and checks that no cgroup of theirs remains,
because a leaked mount or cgroup would break other work on this shared machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404 # builds the probe with gcc, argument list only
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.cli import stockade
from tests.support.images import populate_busybox_rootfs

PROBE_SOURCE = Path(__file__).with_name("probe.c")
CGROUP_V1 = Path("/sys/fs/cgroup")


def build_probe(out: Path) -> Path:
    subprocess.run(["gcc", "-O2", "-static", "-o", str(out), str(PROBE_SOURCE)],  # nosec B603 B607
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def busybox_image(registry: Any, busybox_layout: Path) -> str:
    """The busybox test image (user app, 1000:1000) pushed to the session's loopback registry."""
    from tests.support.images import skopeo_push

    ref = f"{registry.host}/runtime/busybox:latest"
    skopeo_push(busybox_layout, "busybox", ref)
    return ref


@pytest.fixture(scope="session")
def probe_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-safe busybox root filesystem with /bin/probe (shared by the session's tests)."""
    root = tmp_path_factory.mktemp("probe-rootfs") / "rootfs"
    root.mkdir()
    populate_busybox_rootfs(root)
    build_probe(root / "bin" / "probe")
    return root


# These tests exercise the engine's own mechanics and defaults, so they run under the built-in
# ``privileged`` policy, which admits every request as asked (the policy's own tests cover the gate).
ENGINE_POLICY = '[policy]\ndefault = "privileged"\n'


class Engine:
    """The CLI against one store root, remembering nothing: tests name what they need."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root.parent / "engine-config.toml"
        self.config.write_text(ENGINE_POLICY)

    def __call__(self, *args: Any, timeout: float = 120, env: dict[str, str] | None = None,
                 **kwargs: Any) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        full_env = {"STOCKADE_CONFIG": str(self.config), **(env or {})}
        return stockade(*[str(a) for a in args], root=self.root, timeout=timeout, env=full_env, **kwargs)

    def ok(self, *args: Any, **kwargs: Any) -> str:
        """Run and require exit 0; return stdout."""
        proc = self(*args, **kwargs)
        assert proc.returncode == 0, f"{args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return str(proc.stdout)

    def inspect(self, name: str) -> dict[str, Any]:
        docs: list[dict[str, Any]] = json.loads(self.ok("container", "inspect", name))
        return docs[0]

    def cleanup(self) -> None:
        ids = self("ps", "-aq").stdout.split() if (self.root / "containers").exists() else []
        if ids:
            self("rm", "-f", *ids)
        full = [p.name for p in (self.root / "containers").glob("[0-9a-f]" * 8 + "*")]
        for controller in ("memory", "pids", "cpu"):
            for cid in full:
                assert not (CGROUP_V1 / controller / "stockade" / cid).exists(), f"leaked cgroup {cid}"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "store")
    try:
        yield eng
    finally:
        eng.cleanup()
        shutil.rmtree(tmp_path / "store", ignore_errors=True)
