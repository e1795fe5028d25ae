"""``--userns=auto`` as root: container root is not host root, and two containers get different ids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.engine.runtime.support import Engine, busybox_image, engine  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")
ROOT_RANGE = "root:2000000:1000000\n"


@pytest.fixture(autouse=True)
def traversable(engine: Engine) -> None:
    """pytest's directories are 0700; a container whose root is an unprivileged host uid must be
    able to reach its store, as under /var/lib/stockade (0711)."""
    for base in (engine.root.parent,):
        for d in (base, *base.parents):
            if str(d).startswith(("/tmp/", "/var/tmp/")) and d.stat().st_mode & 0o011 != 0o011:
                os.chmod(d, d.stat().st_mode | 0o011)


@pytest.fixture(scope="module")
def root_subids() -> Iterator[None]:
    """Give root a subordinate range for the test unless it has one (and take it back after)."""
    added = []
    for path in (Path("/etc/subuid"), Path("/etc/subgid")):
        text = path.read_text() if path.exists() else ""
        if not any(line.startswith("root:") for line in text.splitlines()):
            with open(path, "a") as f:
                f.write(ROOT_RANGE)
            added.append(path)
    yield
    for path in added:
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines if line != ROOT_RANGE))


def test_userns_auto(engine: Engine, busybox_image: str, root_subids: None) -> None:
    engine.ok("run", "-d", "--name", "a", "--userns", "auto", busybox_image, "sleep", "60")
    engine.ok("run", "-d", "--name", "b", "--userns", "auto", busybox_image, "sleep", "60")
    maps = {}
    for name in ("a", "b"):
        doc = engine.inspect(name)
        maps[name] = Path(f"/proc/{doc['State']['Pid']}/uid_map").read_text().split()
        assert maps[name][0] == "0" and maps[name][1] != "0" and maps[name][2] == "65536"
        assert doc["HostConfig"]["UsernsMode"] == "auto"
        host_uid = os.stat(f"/proc/{doc['State']['Pid']}").st_uid
        assert host_uid == int(maps[name][1]) + 1000  # the image user app, inside the block
    assert maps["a"][1] != maps["b"][1]
    assert engine.ok("exec", "-u", "0", "a", "id", "-u").strip() == "0"


def test_userns_auto_image_files_keep_their_owners(engine: Engine, busybox_image: str,
                                                  root_subids: None) -> None:
    out = engine.ok("run", "--rm", "--userns", "auto", busybox_image, "sh", "-c",
                    "id -un; stat -c %U /home/app /bin/busybox; touch /home/app/mine && echo write-ok")
    assert out.split() == ["app", "app", "root", "write-ok"]
    out = engine.ok("run", "--rm", "--userns", "auto", "-u", "0", busybox_image, "sh", "-c",
                    "echo x > /etc/hosts && echo hosts-ok; grep CapEff /proc/self/status")
    assert out.split()[0] == "hosts-ok" and out.split()[2] == "00000000a80425fb"
