"""``run IMAGE``: pulled from a real registry on loopback, unpacked by the store, run over overlayfs
(or the copy driver), with the image's USER, WORKDIR and ENV, and no registry needed once cached."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.engine.runtime.support import ENGINE_POLICY, Engine, busybox_image, engine  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")


@pytest.fixture
def image(busybox_image: str) -> str:
    return busybox_image


def test_run_pulls_then_uses_the_cache(engine: Engine, image: str) -> None:
    out = engine.ok("run", "--rm", image, "sh", "-c", "id; pwd; echo $PATH; grep Seccomp: /proc/self/status")
    assert out.splitlines() == ["uid=1000(app) gid=1000(app)", "/home/app",
                                "/usr/sbin:/usr/bin:/sbin:/bin", "Seccomp:\t2"]
    images = json.loads(engine.ok("images", "-o", "json"))
    assert [i["repository"] for i in images] == [image.rsplit(":", 1)[0]]
    assert engine.ok("run", "--rm", "--pull", "never", image, "true") == ""


def test_overlay_root_and_private_upper_layer(engine: Engine, image: str) -> None:
    engine.ok("run", "--name", "one", "-u", "0", image, "sh", "-c", "echo changed > /etc/motd")
    doc = engine.inspect("one")
    upper = Path(doc["HostnamePath"]).parent / "upper"
    assert (upper / "etc" / "motd").read_text() == "changed\n"  # the write went to the container's upper
    proc = engine("run", "--rm", image, "cat", "/etc/motd")
    assert proc.returncode == 1  # other containers never see it


def test_read_only_image_root(engine: Engine, image: str) -> None:
    proc = engine("run", "--rm", "--read-only", image, "touch", "/home/app/x")
    assert proc.returncode == 1 and "Read-only file system" in proc.stderr


def test_copy_driver(engine: Engine, image: str, tmp_path: Path) -> None:
    cfg = tmp_path / "copy.toml"
    cfg.write_text('[storage]\ndriver = "copy"\n' + ENGINE_POLICY)
    out = engine.ok("run", "--name", "copied", image, "sh", "-c", "id -u; ls -ld /home/app | cut -c1-10",
                    env={"STOCKADE_CONFIG": str(cfg)})
    assert out.split() == ["1000", "drwxr-xr-x"]
    doc = engine.inspect("copied")
    assert doc["Driver"] == "copy"
    assert (Path(doc["HostnamePath"]).parent / "rootfs" / "bin" / "busybox").is_file()


def test_missing_image_and_bad_reference(engine: Engine) -> None:
    proc = engine("run", "--rm", "--pull", "never", "127.0.0.1:1/none/such:tag", "true")
    assert proc.returncode == 125 and "not in the store" in proc.stderr
    proc = engine("run", "--rm", "bad@@reference", "true")
    assert proc.returncode == 125 and proc.stderr.startswith("stockade: error:")
    assert not (engine.root / "containers").exists() or engine("ps", "-aq").stdout == ""
