"""Blobs and locks: verified before visible, one writer per digest, stale temporaries removed."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from engine.registry.errors import VerificationError
from engine.registry.manifest import Descriptor
from engine.store.blobs import BlobStore, BlobWriter
from engine.store.layout import StoreError, StoreLayout
from engine.store.locks import Busy, locked, remove_lock_file
from tests.engine.registry.hostile import digest_of


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    layout = StoreLayout(tmp_path / "root")
    layout.ensure()
    return BlobStore(layout)


def test_verified_before_visible(blobs: BlobStore) -> None:
    data = b"content" * 1000
    digest = digest_of(data)
    with pytest.raises(VerificationError, match="content does not match its digest"):
        with blobs.ingest(digest, len(data)) as writer:
            assert writer is not None
            writer.write(data[:-1] + b"!")
            writer.commit()
    with pytest.raises(VerificationError, match="more data than the 7000 bytes"):
        with blobs.ingest(digest, len(data)) as writer:
            assert writer is not None
            writer.write(data + b"x")
    assert not blobs.has(digest)
    assert os.listdir(blobs.path(digest).parent) == []  # no temporary left
    assert blobs.write_bytes(data) == digest and blobs.read(digest, 10_000) == data
    with blobs.ingest(digest, len(data)) as writer:
        assert writer is None  # already present: nothing to write


@pytest.mark.parametrize("direct", [True, False])
def test_every_size_lands_whole_around_or_through_the_page_cache(blobs: BlobStore, direct: bool) -> None:
    """Layer blobs go around the page cache in aligned blocks, the tail padded and cut off again;
    others are buffered. Either way the file holds exactly the bytes written, whatever the sizes of
    the writes and of the blob (empty, a block's edge, a buffer's edge, several buffers)."""
    block, buffer = BlobWriter.ALIGN, BlobWriter.BUFFER
    for size in (0, 1, block - 1, block, block + 1, buffer - 1, buffer, buffer + 1, 2 * buffer + 12345):
        data = os.urandom(size)
        digest = digest_of(data)
        with blobs.ingest(digest, size, direct=direct) as writer:
            assert writer is not None and writer.direct is direct  # this filesystem takes O_DIRECT
            for offset in range(0, size, 1_000_003):  # writes that straddle the buffer's edges
                writer.write(memoryview(data)[offset:offset + 1_000_003])
            writer.commit()
        assert blobs.path(digest).read_bytes() == data, size
    assert list(blobs.temporaries()) == []


def test_damaged_blob_is_detected_on_read(blobs: BlobStore) -> None:
    digest = blobs.write_bytes(b"{}")
    blobs.path(digest).write_bytes(b"[]")
    with pytest.raises(StoreError, match="content does not match its digest.*is damaged"):
        blobs.read(digest, 100)


def test_write_stream_names_by_content(blobs: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    digest, size = blobs.write_stream(io.BytesIO(data))
    assert (digest, size) == (digest_of(data), len(data))
    with pytest.raises(StoreError, match="content does not match its descriptor"):
        blobs.write_stream(io.BytesIO(data), Descriptor("x/y", "sha256:" + "0" * 64, len(data)))
    assert list(blobs.temporaries()) == []


def test_one_writer_per_digest_across_threads(blobs: BlobStore) -> None:
    data = os.urandom(100_000)
    digest = digest_of(data)
    writes: list[int] = []

    def ingest() -> None:
        with blobs.ingest(digest, len(data)) as writer:
            if writer is not None:
                time.sleep(0.2)  # hold the lock while others arrive
                writer.write(data)
                writer.commit()
                writes.append(1)

    threads = [threading.Thread(target=ingest) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writes == [1] and blobs.read(digest, len(data)) == data


def test_stale_temporaries_are_removed_by_the_next_writer(blobs: BlobStore) -> None:
    data = b"after a crash"
    digest = digest_of(data)
    stale = blobs.path(digest).with_name(f".{blobs.path(digest).name}.tmp-deadbeef")
    stale.write_bytes(b"half of someth")
    blobs.write_bytes(data)
    assert not stale.exists() and blobs.has(digest)


def test_locks_exclude_threads_and_survive_lock_file_deletion(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with locked(path):
        with pytest.raises(Busy):
            with locked(path, blocking=False):
                pass
        assert not remove_lock_file(path)  # held: not removed
    with locked(path, shared=True), locked(path, shared=True, blocking=False):
        pass  # shared holders coexist
    order: list[str] = []

    def late() -> None:
        with locked(path):
            order.append("late")

    with locked(path):
        t = threading.Thread(target=late)
        t.start()
        time.sleep(0.1)
        order.append("first")
        path.unlink()  # the collector deletes the file while we hold it...
    t.join()
    assert order == ["first", "late"]  # ...and the waiter still did not get in before we let go
    assert remove_lock_file(path) and not path.exists()


def test_remove_tree_as_an_unprivileged_user() -> None:
    """A layer may hold directories its owner cannot read or write (mode 0, 0500); removing the
    tree must still work without root's DAC override. (pytest's tmp_path is private to root, so the
    tree lives in a fresh directory under /tmp that the unprivileged user can reach.)"""
    import pwd
    import shutil
    import tempfile

    from engine.store.layout import remove_tree

    nobody = pwd.getpwnam("nobody").pw_uid
    base = Path(tempfile.mkdtemp(prefix="stockade-rmtree-"))
    try:
        os.chmod(base, 0o755)
        (base / "a" / "b" / "c").mkdir(parents=True)
        (base / "a" / "b" / "c" / "f").write_text("x")
        (base / "a" / "g").write_text("y")
        os.chown(base, nobody, nobody)  # the store directory holding the tree is the user's
        for dirpath, dirnames, filenames in os.walk(base / "a"):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, nobody, nobody)
        os.chmod(base / "a" / "b" / "c", 0)
        os.chmod(base / "a" / "b", 0o500)
        os.chmod(base / "a", 0)
        pid = os.fork()
        if pid == 0:  # the child drops to nobody and removes the tree
            try:
                os.setgid(nobody)
                os.setuid(nobody)
                remove_tree(base / "a")
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not (base / "a").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)
