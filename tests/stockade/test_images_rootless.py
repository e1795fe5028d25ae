"""The image verbs as an unprivileged user: XDG store and credentials, rootless unpacking."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import stat
import subprocess  # nosec B404 # useradd/userdel and the CLI with argument lists
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.engine.registry.fixtures import Pushed, pushed_busybox  # noqa: F401 - fixture
from tests.support.cli import REPO
from tests.support.images import skopeo_push
from tests.support.registry import PASSWORD, USER, Registry

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates a user; needs root")


@pytest.fixture(scope="module")
def rootless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pwd.struct_passwd]:
    name = f"stk-img-{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)  # nosec
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)  # nosec


def as_user(user: pwd.struct_passwd, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"HOME": user.pw_dir, "USER": user.pw_name, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
           "LANG": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "stockade", *args], user=user.pw_uid,  # nosec
                          group=user.pw_gid, extra_groups=[], env=env, cwd=user.pw_dir, text=True,
                          capture_output=True, input=input, timeout=120,
                          stdin=None if input is not None else subprocess.DEVNULL)


def test_rootless_pull_login_and_remove(rootless: pwd.struct_passwd, pushed_busybox: Pushed,
                                        auth_registry: Registry, busybox_layout: Path) -> None:
    home = Path(rootless.pw_dir)
    pulled = as_user(rootless, "pull", pushed_busybox.ref)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.splitlines()[-1] == f"Digest: {pushed_busybox.digest}"
    store = home / ".local/share/stockade"
    [layer] = list((store / "layers/sha256").iterdir())
    busybox = layer / "diff/bin/busybox"
    assert busybox.is_file() and busybox.stat().st_uid == rootless.pw_uid  # no chown without root
    [row] = json.loads(as_user(rootless, "images", "-o", "json").stdout)
    assert row["digest"] == pushed_busybox.digest

    private = f"{auth_registry.host}/rootless/busybox:latest"
    digest = skopeo_push(busybox_layout, "busybox", private, creds=(USER, PASSWORD))
    login = as_user(rootless, "login", "-u", USER, "--password-stdin", auth_registry.host, input=PASSWORD)
    assert login.returncode == 0, login.stderr
    auth = home / ".config/stockade/auth.json"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600 and auth.stat().st_uid == rootless.pw_uid
    assert as_user(rootless, "pull", private).stdout.splitlines()[-1] == f"Digest: {digest}"

    removed = as_user(rootless, "rmi", pushed_busybox.ref, private)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(as_user(rootless, "images", "-o", "json").stdout) == []
    assert list((store / "layers/sha256").iterdir()) == []
