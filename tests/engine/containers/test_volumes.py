"""Named and anonymous volumes: creation, listing, removal refused while in use, prune."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import NotFoundError
from engine.volumes import VolumeError, Volumes


def test_create_get_list_remove(tmp_path: Path) -> None:
    vols = Volumes(tmp_path)
    v = vols.create("data", labels={"a": "b"})
    assert v.mountpoint == tmp_path / "volumes/data/_data" and v.mountpoint.is_dir()
    assert vols.create("data").name == "data"  # idempotent, as docker volume create
    with pytest.raises(VolumeError, match="already exists"):
        vols.create("data", exist_ok=False)
    anon = vols.create()
    assert anon.anonymous and len(anon.name) == 64
    assert {x.name for x in vols.list()} == {"data", anon.name}
    assert vols.get("data").inspect()["Labels"] == {"a": "b"}
    with pytest.raises(VolumeError, match="in use"):
        vols.remove("data", in_use={"data"})
    vols.remove("data", in_use=set())
    with pytest.raises(NotFoundError):
        vols.get("data")


def test_prune_and_names(tmp_path: Path) -> None:
    vols = Volumes(tmp_path)
    named = vols.create("keep")
    anon = vols.create()
    used = vols.create()
    assert vols.prune(in_use={used.name}) == [anon.name]
    assert {v.name for v in vols.list()} == {named.name, used.name}
    assert vols.prune(in_use={used.name}, all_volumes=True) == ["keep"]
    for bad in ("../x", "-a", "a/b", ""):
        with pytest.raises(VolumeError, match="invalid volume name"):
            vols.create(bad)
