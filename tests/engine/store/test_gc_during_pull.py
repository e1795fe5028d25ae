"""rmi, image prune and gc while a pull of an image sharing layers with the removed one runs.

The pull holds the collector's lock shared for its whole run, so a collection either waits for it
(prune) or gives up (rmi's own non-blocking one): the shared base layer, already in the store and
counted as present by the pull, is never deleted under it. Real processes, a paced impostor.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from engine.config import Paths
from engine.reference import Reference
from engine.registry.client import RegistryClient
from engine.store import Store
from tests.engine.layers.builders import file
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.hostile import Hostile, digest_of
from tests.engine.registry.oci import make_image
from tests.engine.store.helpers import assert_consistent
from tests.engine.store.test_concurrency import start_pull
from tests.support.cli import stockade


def test_removal_of_an_image_sharing_a_base_layer_while_a_pull_runs(tmp_path: Path,
                                                                    hostile: Hostile) -> None:
    base = [file("etc/os-release", b"ID=base\n")]
    first = make_image([base, [file("one", b"1")]])
    second = make_image([base, [file("two", os.urandom(1_500_000))]])
    hostile.image("ns/first", "latest", first.config, list(first.layers))
    hostile.image("ns/second", "latest", second.config, list(second.layers), pace=0.1)  # ~2 s
    root = tmp_path / "root"
    store = Store(Paths.default(root=root), make_config())
    client = RegistryClient(make_config(), store.paths)
    store.pull(Reference.parse(f"{hostile.host}/ns/first"), client)
    client.close()
    slow_layer = f"/v2/ns/second/blobs/{digest_of(second.layers[1])}"
    proc = start_pull(root, f"{hostile.host}/ns/second:latest")
    deadline = time.monotonic() + 60
    while not any(s.path == slow_layer for s in hostile.seen):  # the pull is downloading
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    removed = stockade("rmi", f"{hostile.host}/ns/first", root=root)  # its gc gives up, no wait
    assert removed.returncode == 0, removed.stderr
    assert proc.poll() is None  # rmi did not wait for the pull
    pruned = stockade("image", "prune", "-f", root=root)  # waits for the pull, then collects
    assert pruned.returncode == 0, pruned.stderr
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == f"Digest: {second.digest}"
    image = store.resolve(f"{hostile.host}/ns/second")
    dirs = store.layer_dirs(image)
    assert (dirs[0] / "etc" / "os-release").read_bytes() == b"ID=base\n" and (dirs[1] / "two").is_file()
    assert [i.digest for i in store.images()] == [second.digest]
    assert not store.blobs.has(digest_of(first.layers[1]))  # first's own layer was collected
    assert_consistent(store)
