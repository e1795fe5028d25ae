"""containerd 1.6 runs containers through ``stockade-runtime``: ``ctr run --runtime io.containerd.runc.v2
--runc-binary stockade-runtime``, with a private daemon, the busybox fixture imported by ``ctr image
import``. Output and exit codes reach ``ctr``; the node policy's RuntimeDefault seccomp shows inside;
a privileged container is refused by an enforcing node policy with the runtime's reason in ctr's
error; a detached task takes ``exec``, ``ps`` and ``kill`` through the shim."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.oci_runtime.containerd import Containerd
from tests.oci_runtime.support import BUILTIN_POLICY, new_id

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="runs containerd as root"),
              pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd is not installed"),
              pytest.mark.slow]


def status_of(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory, busybox_layout: Path) -> Iterator[Containerd]:
    daemon = Containerd(tmp_path_factory.mktemp("containerd"), f"stockade-test-{uuid.uuid4().hex[:8]}")
    try:
        daemon.start()
        daemon.import_image(busybox_layout)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def enforcing(containerd: Containerd) -> Iterator[None]:
    containerd.policy.write_text("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {name: node-enforce}\n"
                                 "spec:\n  profile: privileged:v1\n  runtime:\n    privileged: false\n")
    try:
        yield
    finally:
        shutil.copy(BUILTIN_POLICY, containerd.policy)


def test_ctr_run_output_and_exit_code(containerd: Containerd) -> None:
    proc = containerd.run(new_id(), "sh", "-c", "echo hello from containerd; id -u")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["hello from containerd", "1000"]  # the image's USER


def test_ctr_run_propagates_a_non_zero_exit(containerd: Containerd) -> None:
    proc = containerd.run(new_id(), "sh", "-c", "echo bye >&2; exit 7")
    assert proc.returncode == 7 and "bye" in proc.stderr


def test_node_policy_hardening_is_visible_inside(containerd: Containerd) -> None:
    # ctr's spec has no seccomp profile without --seccomp: the default node policy adds RuntimeDefault.
    proc = containerd.run(new_id(), "cat", "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    st = status_of(proc.stdout)
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1" and st["CapEff"] == "0" * 16  # uid 1000
    peer = containerd.run(new_id(), "cat", "/proc/self/status", runtime=False)
    assert peer.returncode == 0 and status_of(peer.stdout)["Seccomp"] == "0"  # runc runs the bundle as given


def test_privileged_refused_by_an_enforcing_node_policy(containerd: Containerd, enforcing: None) -> None:
    cid = new_id()
    proc = containerd.run(cid, "true", extra=("--privileged",))
    try:
        assert proc.returncode != 0
        assert "refused by the node policy node-enforce" in proc.stderr
        assert "[runtime.privileged] privileged containers are not allowed" in proc.stderr
        assert not (containerd.runc_root / containerd.namespace / cid).exists()
    finally:
        containerd.remove(cid)


def test_detached_task_exec_ps_and_kill(containerd: Containerd) -> None:
    cid = new_id()
    started = containerd.run(cid, "sleep", "60", detach=True)
    try:
        assert started.returncode == 0, started.stderr
        execed = containerd.ctr("task", "exec", "--exec-id", "probe", cid, "sh", "-c", "echo exec ok; exit 3")
        assert execed.returncode == 3 and execed.stdout == "exec ok\n"
        listed = containerd.ctr("task", "ps", cid)
        assert listed.returncode == 0 and len(listed.stdout.splitlines()) >= 2  # header + the init
        assert containerd.ctr("task", "kill", "-s", "SIGKILL", cid).returncode == 0
    finally:
        containerd.remove(cid)
    assert not (containerd.runc_root / containerd.namespace / cid).exists()
