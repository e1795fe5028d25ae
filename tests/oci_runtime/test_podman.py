"""podman 4.3 (through conmon) runs containers with ``--runtime stockade-runtime``: a throwaway store
(``--root``, ``--runroot``, ``--tmpdir``), the cgroupfs manager, the busybox fixture loaded from a docker
archive. Output and exit codes reach podman; the default node policy's RuntimeDefault seccomp shows
inside where podman sent no profile (runc, the peer, runs the same request unfiltered); an enforcing
node policy passed with ``--runtime-flag`` refuses ``--privileged`` with its reason in podman's error;
a detached container takes ``exec`` (with and without a terminal, through conmon's console socket),
``top`` and ``stop``.

podman does not pass ``--root`` to its runtime (nor its ``--runtime-flag`` values to the clean-up it
runs after exit), so the runtime's state is in its default root, ``/run/stockade-runtime``: the tests
check that every container they ran left nothing there, and no cgroup."""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 # podman and skopeo with argument lists
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.oci_runtime.support import CGROUP_V1, CONTROLLERS, RUNTIME

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="runs podman as root"),
              pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
              pytest.mark.slow]

IMAGE = "localhost/stockade/busybox:latest"
# As root here: podman's default rlimits are above the host's hard limits (see engine-host.md).
ULIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768")
RUNTIME_ROOT = Path("/run/stockade-runtime")


class Podman:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.base = ["podman", "--root", str(directory / "root"), "--runroot", str(directory / "runroot"),
                     "--tmpdir", str(directory / "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                     "--storage-driver", "overlay"]
        self.ids: list[str] = []

    def __call__(self, *args: Any, timeout: float = 180) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        # The test session points DOCKER_CONFIG at a directory that does not exist; podman stats it.
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONFIG", "STOCKADE_RUNTIME_POLICY")}
        return subprocess.run([*self.base, *[str(a) for a in args]], capture_output=True, text=True,  # nosec B603
                              timeout=timeout, stdin=subprocess.DEVNULL, env=env)

    def run(self, *args: Any, runtime: bool = True, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """``podman run --rm`` with the runtime (or runc, the peer); the container id is kept for the
        clean-up checks (``--cidfile``)."""
        cidfile = self.directory / f"cid-{len(self.ids)}"
        chosen = ["--runtime", str(RUNTIME), *[f"--runtime-flag={f}" for f in flags]] if runtime else \
            ["--runtime", "runc"]
        proc = self(*chosen, "run", "--rm", "--cidfile", cidfile, *ULIMITS, "--network", "none", *args)
        if cidfile.exists():
            self.ids.append(cidfile.read_text().strip())
        return proc

    def leftovers(self) -> list[str]:
        found = [str(RUNTIME_ROOT / cid) for cid in self.ids if (RUNTIME_ROOT / cid).exists()]
        found += [str(CGROUP_V1 / c / "libpod_parent" / f"libpod-{cid}") for cid in self.ids for c in CONTROLLERS
                  if (CGROUP_V1 / c / "libpod_parent" / f"libpod-{cid}").exists()]
        return found

    def stop(self) -> None:
        self("rm", "--all", "--force")
        self("rmi", "--all", "--force")  # not `system reset`: it also drops the host's shared network configs
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(str(self.directory))), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)  # nosec B603 B607
        shutil.rmtree(self.directory, ignore_errors=True)


def status_of(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory, busybox_layout: Path) -> Iterator[Podman]:
    made_root = not RUNTIME_ROOT.exists()
    engine = Podman(tmp_path_factory.mktemp("podman"))
    try:
        archive = engine.directory / "busybox.tar"
        subprocess.run(["skopeo", "copy", "-q", f"oci:{busybox_layout}:busybox",  # nosec B603 B607
                        f"docker-archive:{archive}:{IMAGE}"], check=True, capture_output=True)
        loaded = engine("load", "-q", "-i", archive)
        assert loaded.returncode == 0, loaded.stderr
        yield engine
        assert engine.leftovers() == []
    finally:
        engine.stop()
        if made_root and RUNTIME_ROOT.exists():
            shutil.rmtree(RUNTIME_ROOT / ".cache", ignore_errors=True)
            if not any(RUNTIME_ROOT.iterdir()):
                RUNTIME_ROOT.rmdir()


def test_podman_run_output_and_exit_code(podman: Podman) -> None:
    proc = podman.run(IMAGE, "sh", "-c", "echo hello from podman; id -u")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["hello", "from", "podman", "1000"]
    assert podman.leftovers() == []


def test_podman_propagates_a_non_zero_exit(podman: Podman) -> None:
    proc = podman.run(IMAGE, "sh", "-c", "echo oops >&2; exit 5")
    assert proc.returncode == 5 and "oops" in proc.stderr


def test_default_node_policy_adds_seccomp_where_podman_sent_none(podman: Podman) -> None:
    ours = podman.run("--security-opt", "seccomp=unconfined", IMAGE, "cat", "/proc/self/status")
    assert ours.returncode == 0, ours.stderr
    assert status_of(ours.stdout)["Seccomp"] == "2"
    peer = podman.run("--security-opt", "seccomp=unconfined", IMAGE, "cat", "/proc/self/status", runtime=False)
    assert peer.returncode == 0 and status_of(peer.stdout)["Seccomp"] == "0"


def test_privileged_refused_by_an_enforcing_node_policy(podman: Podman, tmp_path: Path) -> None:
    policy = tmp_path / "node-policy.yaml"
    policy.write_text("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {name: node-enforce}\n"
                      "spec:\n  profile: privileged:v1\n  runtime:\n    privileged: false\n")
    proc = podman.run("--privileged", IMAGE, "true", flags=(f"node-policy={policy}",))
    assert proc.returncode != 0
    assert "refused by the node policy node-enforce" in proc.stderr
    assert "[runtime.privileged] privileged containers are not allowed" in proc.stderr
    assert podman.leftovers() == []


def test_detached_container_exec_tty_top_and_stop(podman: Podman) -> None:
    started = podman("--runtime", RUNTIME, "run", "-d", *ULIMITS, "--network", "none", IMAGE, "sleep", "300")
    assert started.returncode == 0, started.stderr
    cid = started.stdout.strip()
    podman.ids.append(cid)
    try:
        execed = podman("exec", cid, "sh", "-c", "echo exec ok; exit 4")
        assert execed.returncode == 4 and execed.stdout == "exec ok\n"
        tty = podman("exec", "-t", cid, "tty")
        assert tty.returncode == 0 and tty.stdout.strip() == "/dev/pts/0"
        top = podman("top", cid)
        assert top.returncode == 0 and "sleep 300" in top.stdout
        assert podman("stop", "-t", "1", cid).returncode == 0  # PID 1 ignores SIGTERM: SIGKILL follows
    finally:
        podman("rm", "--force", cid)
    assert podman.leftovers() == []
