"""Container records on disk: ids, names (reserved atomically), lookup by name or id prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Paths
from engine.containers import state
from engine.containers.store import ContainerError, ContainerStore, NameInUseError
from engine.errors import NotFoundError


@pytest.fixture
def store(tmp_path: Path) -> ContainerStore:
    return ContainerStore(Paths.default(root=tmp_path))


def _save(store: ContainerStore, cid: str, name: str) -> None:
    store.save({"Id": cid, "Name": f"/{name}", "State": state.initial(), "Stockade": {}})


def test_reserve_and_find(store: ContainerStore) -> None:
    cid, name = store.reserve("web")
    _save(store, cid, name)
    assert name == "web" and len(cid) == 64
    assert store.find("web") == cid == store.find("/web") == store.find(cid[:6]) == store.find(cid)
    with pytest.raises(NameInUseError, match='"/web" is already in use'):
        store.reserve("web")
    store.release_name("web", cid)
    assert store.reserve("web")[1] == "web"


def test_generated_names_and_invalid_names(store: ContainerStore) -> None:
    _, name = store.reserve(None)
    assert name.count("_") == 2
    for bad in ("", "-x", "a b", "../etc", "x" * 200):
        with pytest.raises(ContainerError, match="invalid container name"):
            store.reserve(bad)


def test_lookup_errors(store: ContainerStore) -> None:
    with pytest.raises(NotFoundError):
        store.find("nothing")
    for cid in ("ab" + "0" * 62, "ab" + "1" * 62):
        store.dir(cid).mkdir(parents=True)
        _save(store, cid, f"n{cid[2]}")
    with pytest.raises(ContainerError, match="matches 2 containers"):
        store.find("ab")
    assert store.find("ab1") == "ab" + "1" * 62


def test_update_is_locked_read_modify_write(store: ContainerStore) -> None:
    cid, name = store.reserve("u")
    _save(store, cid, name)
    store.update(cid, lambda d: d["State"].update(ExitCode=3))
    assert store.load(cid)["State"]["ExitCode"] == 3
    assert not list(store.dir(cid).glob(".container.json.tmp-*"))


def test_corrupt_record(store: ContainerStore) -> None:
    cid, _ = store.reserve("c")
    store.record_path(cid).write_text("{half")
    with pytest.raises(ContainerError, match="unreadable"):
        store.load(cid)


def test_stale_reservation_is_reclaimed(store: ContainerStore) -> None:
    cid, _ = store.reserve("ghost")
    store.dir(cid).rmdir()  # as if a remover died between deleting the directory and the name
    assert store.reserve("ghost")[1] == "ghost"
