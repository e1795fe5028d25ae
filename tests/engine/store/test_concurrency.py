"""Two pulls at once, and ``kill -9`` in the middle of one: real processes, real locks.

The registry here is the loopback impostor serving an honest image slowly, because it can count
requests (the real registry's access log is off) and can be slow on purpose, so both pulls are
really in flight at the same time and the kill really lands mid-download.
"""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404 # the stockade CLI with argument lists
import sys
import time
from collections import Counter
from pathlib import Path

from engine.config import Paths
from engine.store import Store
from engine.store.blobs import BlobWriter
from tests.engine.layers.builders import file
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.hostile import Hostile, digest_of
from tests.engine.registry.oci import make_image
from tests.engine.store.helpers import assert_consistent
from tests.support.cli import REPO, stockade


def start_pull(root: Path, ref: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "stockade", "--root", str(root), "pull", ref],  # nosec
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)


def test_two_pulls_of_one_image_at_once(tmp_path: Path, hostile: Hostile) -> None:
    parts = make_image([[file(f"data{i}", os.urandom(600_000))] for i in range(3)])
    hostile.image("slow/app", "latest", parts.config, list(parts.layers), pace=0.01)
    ref = f"{hostile.host}/slow/app:latest"
    root = tmp_path / "root"
    procs = [start_pull(root, ref) for _ in range(2)]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert out.strip().splitlines()[-1] == f"Digest: {parts.digest}"
    gets = Counter(s.path for s in hostile.seen if s.method == "GET" and "/blobs/" in s.path)
    assert set(gets) == {f"/v2/slow/app/blobs/{digest_of(b)}" for b in (parts.config, *parts.layers)}
    assert set(gets.values()) == {1}, gets  # each blob downloaded once, by one of the two
    store = Store(Paths.default(root=root), make_config())
    assert [i.digest for i in store.images()] == [parts.digest]
    assert_consistent(store)


def test_kill_9_mid_pull_then_a_rerun_completes(tmp_path: Path, hostile: Hostile) -> None:
    # Larger than the blob writer's buffer, so the temporary file holds data while the rest of the
    # blob is still on its way (paced: 64 KiB per 10 ms).
    big = os.urandom(BlobWriter.BUFFER * 3 // 2)
    parts = make_image([[file("small", b"s")], [file("big", big)]])
    hostile.image("slow/app", "latest", parts.config, list(parts.layers), pace=0.01)
    ref = f"{hostile.host}/slow/app:latest"
    root = tmp_path / "root"
    blobs = root / "blobs" / "sha256"
    big_hex = digest_of(parts.layers[1]).partition(":")[2]
    proc = start_pull(root, ref)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = [p for p in blobs.glob(f".{big_hex}.tmp-*")] if blobs.exists() else []
        if partial and partial[0].stat().st_size >= BlobWriter.BUFFER:
            break
        time.sleep(0.02)
    else:
        proc.kill()
        raise AssertionError(f"the pull never got going: {proc.communicate()}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(Paths.default(root=root), make_config())
    assert store.images() == []  # nothing recorded
    assert not (blobs / big_hex).exists()  # no partial blob under its final name
    for blob in blobs.iterdir():  # whatever is visible is whole and verified
        if not blob.name.startswith("."):
            assert digest_of(blob.read_bytes()).partition(":")[2] == blob.name
    assert list(blobs.glob(".*.tmp-*"))  # the killed writer's temporary is still there...
    hostile.image("slow/app", "latest", parts.config, list(parts.layers))  # full speed now
    rerun = stockade("pull", ref, root=root)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip().splitlines()[-1] == f"Digest: {parts.digest}"
    assert_consistent(store)  # ...and the re-run removed it
    assert (store.layer_dirs(store.resolve(ref))[1] / "big").read_bytes() == big
