"""Rootless: an unprivileged user (made for this session, with /etc/subuid ranges) runs the real CLI.

The same hardening as for root is checked from inside, plus what only rootless has: the user's own
uid is container root (newuidmap/newgidmap), the store lives under the user's XDG directories, and
resource limits are refused with podman's warning on cgroup v1.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.engine.runtime.support import ENGINE_POLICY, busybox_image, probe_rootfs  # noqa: F401 - fixtures
from tests.support.cli import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates a user; needs root")


class RootlessUser:
    def __init__(self, name: str) -> None:
        self.name = name
        entry = pwd.getpwnam(name)
        self.uid, self.gid, self.home = entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
                "PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}

    def __call__(self, *args: object, input: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stockade", *[str(a) for a in args]],
                              user=self.uid, group=self.gid, extra_groups=[], env=self.env(),
                              cwd=self.home, capture_output=True, text=True, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL, timeout=timeout)

    def ok(self, *args: object, **kw: object) -> str:
        proc = self(*args, **kw)  # type: ignore[arg-type]
        assert proc.returncode == 0, f"{args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout


@pytest.fixture(scope="module")
def user(probe_rootfs: Path) -> Iterator[RootlessUser]:
    name = f"stk-rl-{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        u = RootlessUser(name)
        if name not in Path("/etc/subuid").read_text():
            pytest.skip("useradd did not allocate subordinate ids")
        shutil.copytree(probe_rootfs, u.home / "rootfs", symlinks=True)
        (u.home / ".config/stockade").mkdir(parents=True)
        (u.home / ".config/stockade/config.toml").write_text(ENGINE_POLICY)
        for owned in (u.home / "rootfs", u.home / ".config"):
            subprocess.run(["chown", "-R", f"{u.uid}:{u.gid}", str(owned)], check=True)
        yield u
        ids = u("ps", "-aq").stdout.split()
        if ids:
            u("rm", "-f", *ids)
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)


def test_rootless_hardened_container(user: RootlessUser) -> None:
    out = user.ok("run", "--rm", "--rootfs", "-u", "1000", "--read-only", user.home / "rootfs", "sh", "-c",
                  "id -u; grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status; touch /x; echo rc=$?;"
                  "cat /proc/kcore 2>/dev/null | wc -c; cat /proc/keys | wc -c; probe mount; probe unshare;"
                  "probe syscall 1000; ps -o pid | tail -n +2 | wc -l; cat /proc/self/uid_map")
    lines = out.splitlines()
    assert lines[0] == "1000"
    assert lines[1].split() == ["CapEff:", "0000000000000000"]
    assert lines[2].split() == ["NoNewPrivs:", "1"] and lines[3].split() == ["Seccomp:", "2"]
    assert lines[4:10] == ["rc=1", "0", "0", "errno=1", "errno=1", "errno=38"]
    assert int(lines[10]) <= 4  # no host process visible
    uid_map = [line.split() for line in lines[11:]]
    assert uid_map[0] == ["0", str(user.uid), "1"] and uid_map[1][0] == "1"


def test_rootless_store_is_under_xdg(user: RootlessUser, busybox_image: str) -> None:
    out = user.ok("run", "--rm", busybox_image, "sh", "-c", "id -u; grep Seccomp: /proc/self/status")
    assert out.split() == ["1000", "Seccomp:", "2"]
    assert (user.home / ".local/share/stockade/images.json").is_file()
    assert user.ok("info", "-o", "json").count('"rootless": true') == 1


def test_rootless_lifecycle(user: RootlessUser) -> None:
    user.ok("run", "-d", "--name", "rl", "--rootfs", user.home / "rootfs", "sh", "-c", "echo up; sleep 60")
    assert "rl" in user.ok("ps")
    assert user.ok("exec", "rl", "sh", "-c", "id -u; grep Seccomp: /proc/self/status").split() == \
        ["0", "Seccomp:", "2"]
    user.ok("stop", "-t", "1", "rl")
    assert "up" in user.ok("logs", "rl")
    user.ok("rm", "rl")
    assert user.ok("ps", "-aq") == ""


def test_rootless_limits_warn_on_cgroup_v1(user: RootlessUser) -> None:
    from engine.host import probe_cgroups

    if probe_cgroups().manager == "v2":
        pytest.skip("this host delegates cgroup v2: rootless limits apply")
    proc = user("run", "--rm", "--rootfs", "-m", "64m", user.home / "rootfs", "true")
    assert proc.returncode == 0
    assert "resource limits are not supported and ignored on cgroups v1 rootless systems" in proc.stderr


def test_userns_helper_gives_files_their_image_owners(user: RootlessUser) -> None:
    """What a rootless store needs to unpack layers with their owners: a helper run as root of a user
    namespace with the user's subordinate maps chowns to ids that land in the user's range."""
    code = ("from engine.config import Paths; from engine.containers.create import user_mappings;"
            "from engine.containers.store import ContainerStore; from engine.runtime.userns import run_in_userns;"
            "p = Paths.default(); u, g = user_mappings(p, 'host', ContainerStore(p));"
            "rc, out, err = run_in_userns(['/bin/sh', '-c', 'id -u; touch owned; chown 1000:1000 owned'], u, g);"
            "print(rc, out.decode().strip(), err.decode().strip())")
    proc = subprocess.run([sys.executable, "-c", code], user=user.uid, group=user.gid, extra_groups=[],
                          env=user.env(), cwd=user.home, capture_output=True, text=True, timeout=60)
    assert proc.stdout.split()[:2] == ["0", "0"], proc.stderr
    start = int([line for line in Path("/etc/subuid").read_text().splitlines()
                 if line.startswith(user.name + ":")][0].split(":")[1])
    assert (user.home / "owned").stat().st_uid == start + 999  # container id 1000 -> subuid + 999
