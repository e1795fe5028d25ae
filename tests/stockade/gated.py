"""Fixtures of the policy gate's tests: real images in a real registry, signed with real keys.

One session-wide set-up: a busybox root filesystem (made without Stockade) imported under several
configurations with ``stockade import``, pushed to the loopback registry, some signed with
``stockade sign``: by the key the policy names (``trusted``), by another key (``other``), or not at
all. The policy is written by ``stockade policy new --key``, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import stockade
from tests.support.images import populate_busybox_rootfs
from tests.support.registry import Registry

PASSWORD = "gate-test-password"
KEY_ENV = {"STOCKADE_PASSWORD": PASSWORD}

# name -> (--change instructions, signing key or None)
IMAGES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "signed": (("USER 1000:1000", "WORKDIR /home/app", 'CMD ["/bin/sh"]'), "trusted"),
    "nouser": (('CMD ["/bin/sh"]', "LABEL variant=nouser"), "trusted"),
    "rootname": (("USER root", 'CMD ["/bin/sh"]', "LABEL variant=rootname"), "trusted"),
    "unsigned": (("USER 1000:1000", 'CMD ["/bin/sh"]', "LABEL variant=unsigned"), None),
    "othersigned": (("USER 1000:1000", 'CMD ["/bin/sh"]', "LABEL variant=other"), "other"),
}


@dataclass
class Gated:
    """The session's registry, keys, images (name -> reference) and the policy requiring ``trusted``."""

    registry: Registry
    keys: Path
    policy: Path
    images: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> Path:
        return self.keys / f"{name}.pub"


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def tree(root: Path) -> list[tuple[str, int, int]]:
    """Every path under ``root`` with its size and modification time: what "nothing written" compares."""
    if not root.exists():
        return []
    out = []
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out.append((str(path.relative_to(root)), st.st_size if path.is_file() else -1, st.st_mtime_ns))
    return out


def build(registry: Registry, work: Path) -> Gated:
    rootfs = work / "rootfs"
    populate_busybox_rootfs(rootfs)
    tarball = work / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(rootfs, arcname=".")
    keys = work / "keys"
    keys.mkdir()
    for name in ("trusted", "other"):
        ok(stockade("key", "generate", "--output-key-prefix", keys / name, env=KEY_ENV))
    builder = work / "builder"
    gated = Gated(registry, keys, work / "policy.yaml")
    for name, (changes, signer) in IMAGES.items():
        ref = f"{registry.host}/gated/{name}:1"
        flags = [a for change in changes for a in ("--change", change)]
        ok(stockade("import", *flags, tarball, ref, root=builder))
        ok(stockade("push", ref, root=builder))
        if signer is not None:
            ok(stockade("sign", "--key", keys / f"{signer}.key", ref, root=builder, env=KEY_ENV))
        gated.images[name] = ref
        inspect = json.loads(ok(stockade("image", "inspect", ref, root=builder)))
        gated.digests[name] = inspect[0]["RepoDigests"][0].partition("@")[2]
    policy = ok(stockade("policy", "new", "--name", "gated", "--profile", "restricted",
                         "--images", f"{registry.host}/gated/**", "--key", gated.key("trusted")))
    gated.policy.write_text(policy)
    return gated


@pytest.fixture(scope="session")
def gated(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Gated:
    work = tmp_path_factory.mktemp("gated")
    # Containers whose root is an unprivileged uid must be able to reach their store (as under
    # /var/lib/stockade, 0711): pytest's directories are 0700.
    for d in (work, *work.parents):
        if str(d).startswith("/tmp/") and d.stat().st_mode & 0o011 != 0o011:
            os.chmod(d, d.stat().st_mode | 0o011)
    return build(registry, work)


def config_file(directory: Path, text: str) -> dict[str, Any]:
    """An environment naming a configuration file with ``text`` (for ``env=``)."""
    path = directory / "gate-config.toml"
    path.write_text(text)
    return {"STOCKADE_CONFIG": str(path)}
