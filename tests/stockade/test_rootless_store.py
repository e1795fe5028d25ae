"""A rootless store keeps the image's owners: layers unpacked (and deleted) in the user's namespace.

Real parts only: users made here with useradd (one with the subordinate ranges useradd allocates,
one without), the real CLI run as them, the busybox image (``/home/app`` owned by uid 1000) from
the session's loopback registry, real rootless containers on overlay and on the copy driver.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess  # nosec B404 # useradd/userdel with argument lists
from pathlib import Path
from typing import Iterator

import pytest

from tests.engine.runtime.support import ENGINE_POLICY, busybox_image  # noqa: F401 - fixture
from tests.stockade.test_run_rootless import RootlessUser

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users; needs root")

PROBE = ("stat -c '%u:%g %U' /home/app /etc/passwd /bin/busybox; touch /home/app/mine && echo writable;"
         "ls -ln /home/app/mine | awk '{print $3}'")


def _make_user(prefix: str, *extra: str) -> RootlessUser:
    name = f"{prefix}-{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", *extra, name], check=True, capture_output=True)  # nosec
    user = RootlessUser(name)
    (user.home / ".config/stockade").mkdir(parents=True)
    (user.home / ".config/stockade/config.toml").write_text(ENGINE_POLICY)
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(user.home / ".config")], check=True)  # nosec
    return user


def _remove_user(user: RootlessUser) -> None:
    ids = user("ps", "-aq").stdout.split()
    if ids:
        user("rm", "-f", *ids)
    subprocess.run(["userdel", "-r", user.name], capture_output=True)  # nosec


@pytest.fixture(scope="module")
def mapped() -> Iterator[tuple[RootlessUser, int, int]]:
    """A user with subordinate ranges: (user, first subordinate uid, first subordinate gid)."""
    user = _make_user("stk-own")
    try:
        starts = []
        for kind in ("uid", "gid"):
            lines = [line.split(":") for line in Path(f"/etc/sub{kind}").read_text().splitlines()]
            found = [int(parts[1]) for parts in lines if parts[0] == user.name]
            if not found:
                pytest.skip("useradd did not allocate subordinate ids")
            starts.append(found[0])
        yield user, starts[0], starts[1]
    finally:
        _remove_user(user)


def _files(root: Path) -> list[str]:
    """What a store holds besides its empty skeleton and lock files."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and "locks" not in p.parts and p.name != "images.json")


def test_rootless_layers_keep_image_owners(mapped: tuple[RootlessUser, int, int], busybox_image: str) -> None:
    user, sub_uid, sub_gid = mapped
    pulled = user("pull", busybox_image)
    assert pulled.returncode == 0 and "warning" not in pulled.stderr, pulled.stderr
    store = user.home / ".local/share/stockade"
    [layer] = list((store / "layers/sha256").iterdir())
    home_app = (layer / "diff/home/app").stat()
    assert (home_app.st_uid, home_app.st_gid) == (sub_uid + 999, sub_gid + 999)  # image id 1000
    passwd = (layer / "diff/etc/passwd").stat()
    assert (passwd.st_uid, passwd.st_gid) == (user.uid, user.gid)  # image root -> the user

    for driver in ("overlay", "copy"):
        config = ENGINE_POLICY + ('[storage]\ndriver = "copy"\n' if driver == "copy" else "")
        (user.home / ".config/stockade/config.toml").write_text(config)
        out = user.ok("run", "--rm", busybox_image, "sh", "-c", PROBE).splitlines()
        assert out == ["1000:1000 app", "0:0 root", "0:0 root", "writable", "1000"], (driver, out)
        assert list((store / "containers").glob("[0-9a-f]*")) == [], driver  # --rm left nothing
    (user.home / ".config/stockade/config.toml").write_text(ENGINE_POLICY)

    user.ok("rmi", busybox_image)
    user.ok("image", "prune", "-a", "-f")
    assert json.loads(user.ok("images", "-o", "json")) == []
    assert list((store / "layers/sha256").iterdir()) == []
    assert _files(store) == []


def test_rootless_info_says_limits_apply_or_not(mapped: tuple[RootlessUser, int, int]) -> None:
    from engine.host import probe_cgroups

    user, _, _ = mapped
    host = json.loads(user.ok("info", "-o", "json"))["host"]
    cgroups = probe_cgroups()
    assert host["cgroup_manager"] == cgroups.manager_for(rootless=True)
    assert host["cgroup_host_manager"] == cgroups.manager
    if cgroups.manager == "v1":
        assert "Cgroup manager: none (rootless on cgroup v1: limits are not enforced)" in user.ok("info")


def test_without_subordinate_ids_the_old_behaviour_with_a_warning(busybox_image: str) -> None:
    user = _make_user("stk-nosub", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0")
    try:
        assert user.name not in Path("/etc/subuid").read_text()
        pulled = user("pull", busybox_image)
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stderr.splitlines() == [
            f"stockade: warning: no subordinate uid range for user {user.name} in /etc/subuid: layers are "
            "unpacked as your own user, so every file in a rootless container is owned by root (add one, "
            f"e.g. usermod --add-subuids 100000-165535 {user.name})"]
        store = user.home / ".local/share/stockade"
        [layer] = list((store / "layers/sha256").iterdir())
        assert (layer / "diff/home/app").stat().st_uid == user.uid
        user.ok("rmi", busybox_image)
        assert list((store / "layers/sha256").iterdir()) == [] and _files(store) == []
    finally:
        _remove_user(user)


def test_rootless_refused_layer_names_the_entry_and_leaves_nothing(mapped: tuple[RootlessUser, int, int]) -> None:
    """The unpacker in the user's namespace refuses what it refuses in-process, and says where."""
    import io
    import tarfile

    user, _, _ = mapped
    tarball = user.home / "hostile.tar"
    with tarfile.open(tarball, "w") as tar:
        owned = tarfile.TarInfo("home/app")
        owned.type, owned.uid, owned.gid, owned.mode = tarfile.DIRTYPE, 1000, 1000, 0o700
        tar.addfile(owned)
        link = tarfile.TarInfo("home/app/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(link)
        planted = tarfile.TarInfo("home/app/escape/planted")
        planted.size = 1
        tar.addfile(planted, io.BytesIO(b"x"))
    os.chown(tarball, user.uid, user.gid)
    refused = user("import", tarball, "local/hostile:v1")
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("stockade: error: layer entry 'home/app/escape/planted'"), \
        refused.stderr
    assert not Path("/etc/planted").exists()
    store = user.home / ".local/share/stockade"
    assert list((store / "layers/sha256").iterdir()) == [] and _files(store) == []
