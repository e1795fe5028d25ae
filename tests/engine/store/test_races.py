"""Name changes racing a removal: the loser gets one clear error, the index stays whole.

``tag`` and ``rmi`` resolve their image from the index without a lock, then change the index under
its lock. Another ``rmi`` can remove the image in between. The test makes that window certain
instead of likely: it holds the index lock itself, waits until the kernel shows the operation
blocked on that lock (``/proc/locks``), removes the image as a concurrent ``rmi`` would, and lets go.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from engine.atomicfile import write_atomic
from engine.config import Paths
from engine.errors import NotFoundError
from engine.reference import Reference
from engine.store import Store
from engine.store.importer import import_rootfs
from engine.store.locks import locked
from tests.engine.layers.builders import file, tar_bytes
from tests.engine.registry.fixtures import make_config
from tests.engine.store.helpers import assert_consistent


def someone_waits_on(path: Path) -> bool:
    """Whether a flock(2) waiter is blocked on ``path`` (``/proc/locks`` lists waiters with ``->``)."""
    inode = f":{os.stat(path).st_ino}"
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and any(f.endswith(inode) and f.count(":") == 2 for f in fields):
            return True
    return False


OPERATIONS: dict[str, Callable[[Store], object]] = {
    "tag": lambda store: store.tag("local/app:v1", "local/other:v2"),
    "rmi": lambda store: store.remove(["local/app:v1"]),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_image_removed_while_an_operation_waits_for_the_index(paths: Paths, operation: str) -> None:
    store = Store(paths, make_config())
    image = import_rootfs(store, io.BytesIO(tar_bytes([file("hello", b"hi\n")])),
                          name=Reference.parse("local/app:v1"))
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            OPERATIONS[operation](store)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    with locked(store.layout.index_lock):
        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 60
        while not someone_waits_on(store.layout.index_lock):
            assert worker.is_alive() and time.monotonic() < deadline, outcome
            time.sleep(0.01)
        doc = store.index.load()  # what a concurrent `rmi local/app:v1` writes meanwhile
        doc.forget(image.digest)
        write_atomic(store.layout.index, json.dumps(doc.to_json()).encode(), mode=0o600)
    worker.join(60)
    [error] = outcome
    assert isinstance(error, NotFoundError), repr(error)
    assert str(error) == "image local/app:v1 was removed meanwhile (by another command)"
    assert store.images() == [] and store.index.load().tags == {}
    store.gc()
    assert_consistent(store)
