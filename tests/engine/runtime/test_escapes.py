"""Adversarial images and containers against the runtime's own set-up, with real containers (as root).

Each test replays the shape of a runc or crun escape: mount targets and working directories through
symlinks that point out of the root (CVE-2021-30465), masked paths covered through a planted
/dev/null (CVE-2025-31133), and a command that leads back to the runtime's own host executable
through /proc/self/exe (CVE-2019-5736). Nothing here writes to a host file it could damage: the
tests read what the container would reach and assert it is the container's or refused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess  # nosec B404 # ldd, with an argument list
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.engine.runtime.support import Engine, engine  # noqa: F401 - fixture
from tests.support.images import populate_busybox_rootfs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")

STDLIB = os.path.dirname(os.__file__)


def _rootfs(tmp_path: Path, name: str = "root") -> Path:
    root = tmp_path / name
    root.mkdir()
    populate_busybox_rootfs(root)
    return root


def _with_host_loader(root: Path) -> Path:
    """Give ``root`` the dynamic loader and libraries of the host's Python, as any glibc image has
    them: without a loader, exec of the host interpreter would fail by accident, not by design."""
    exe = os.path.realpath(sys.executable)
    out = subprocess.run(["ldd", exe], check=True, capture_output=True, text=True).stdout  # nosec B603 B607
    for lib in re.findall(r"(/\S+)", out):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lib, dest)
    (root / STDLIB.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return root


REPORT = ('import os\nprint("HOST-EXE", os.readlink("/proc/self/exe"))\n')


def test_masked_paths_use_the_hosts_dev_null_not_a_planted_symlink(engine: Engine, tmp_path: Path) -> None:
    # A volume on /dev whose "null" points at a global sysctl: masking with the path "/dev/null"
    # would bind core_pattern, writable, over /proc/keys (CVE-2025-31133). Only read here.
    evil = tmp_path / "evil-dev"
    evil.mkdir()
    (evil / "null").symlink_to("/proc/sys/kernel/core_pattern")
    out = engine.ok("run", "--rm", "--rootfs", "-v", f"{evil}:/dev", _rootfs(tmp_path),
                    "cat", "/proc/self/mountinfo")
    masks = [line.split() for line in out.splitlines() if line.split()[4:5] == ["/proc/keys"]]
    assert masks, out
    fields = masks[-1]
    fstype = fields[fields.index("-") + 1]
    assert fields[3] == "/null" and fstype == "devtmpfs", fields  # the host's /dev/null node
    assert fields[5].split(",")[0] == "ro"


@pytest.mark.parametrize("how", ["shebang", "symlink"])
def test_command_leading_to_proc_self_exe_is_refused(engine: Engine, tmp_path: Path, how: str) -> None:
    root = _with_host_loader(_rootfs(tmp_path))
    evil = root / "bin" / "evil"
    if how == "shebang":
        evil.write_text("#!/proc/self/exe\n" + REPORT)
        evil.chmod(0o711)  # execute-only: the check still reads its #! line
        args = ["/bin/evil"]
    else:
        evil.symlink_to("/proc/self/exe")
        args = ["evil", "-c", REPORT]
    proc = engine("run", "--rm", "--rootfs", "-v", f"{STDLIB}:{STDLIB}:ro", root, *args)
    assert "HOST-EXE" not in proc.stdout, proc.stdout  # the host's Python never ran in the container
    assert proc.returncode == 126, proc.stderr
    assert "container runtime's own host executable" in proc.stderr


def test_the_host_interpreter_bound_read_only_may_run(engine: Engine, tmp_path: Path) -> None:
    # The same file, reached through a read-only bind rather than /proc/self/exe, cannot be written.
    root = _with_host_loader(_rootfs(tmp_path))
    exe = os.path.realpath(sys.executable)
    (root / "bin" / "py").touch()
    out = engine.ok("run", "--rm", "--rootfs", "-v", f"{STDLIB}:{STDLIB}:ro", "-v", f"{exe}:/bin/py:ro", root,
                    "/bin/py", "-c", REPORT)
    assert out == "HOST-EXE /bin/py\n"


def test_exec_refuses_a_shell_the_container_replaced(engine: Engine, tmp_path: Path) -> None:
    root = _with_host_loader(_rootfs(tmp_path))
    engine.ok("run", "-d", "--name", "planted", "--rootfs", "-v", f"{STDLIB}:{STDLIB}:ro", root,
              "sleep", "300")
    engine.ok("exec", "planted", "sh", "-c", "ln -s /proc/self/exe /bin/new && mv /bin/new /bin/sh")
    proc = engine("exec", "planted", "sh", "-c", REPORT)
    assert "HOST-EXE" not in proc.stdout and proc.returncode == 126, (proc.stdout, proc.stderr)
    assert engine.ok("exec", "planted", "/bin/busybox", "echo", "alive").strip() == "alive"


def test_mount_targets_and_workdirs_through_symlinks_stay_inside(engine: Engine, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    source = tmp_path / "source"
    source.mkdir()
    (source / "f").write_text("volume\n")
    root = _rootfs(tmp_path)
    escape = "/../../.." + str(outside)
    (root / "data").symlink_to(escape + "/data")
    (root / "work").symlink_to("/proc/self/root/../.." + str(outside) + "/work")
    for name in ("hosts", "hostname", "resolv.conf"):
        (root / "etc" / name).symlink_to(escape + "/" + name)
    # a bind, a tmpfs, and a working directory on symlinks out of the root: refused, not followed out
    for opts in (["-v", f"{source}:/data"], ["--tmpfs", "/data"], ["-w", "/work/sub"]):
        proc = engine("run", "--rm", "--rootfs", *opts, root, "true")
        assert proc.returncode == 125, (opts, proc.stdout, proc.stderr)
    # /etc/hosts and friends on symlinks: the engine's files are mounted inside the container
    out = engine.ok("run", "--rm", "--rootfs", root, "cat", "/etc/hostname", "/etc/hosts")
    assert "localhost" in out
    assert list(outside.iterdir()) == []  # nothing was created or mounted on the host
    # a ".." destination is normalized inside the root
    out = engine.ok("run", "--rm", "--rootfs", "--mount", f"type=bind,src={source},dst=/a/../../etc",
                    root, "cat", "/etc/f")
    assert out == "volume\n" and list(outside.iterdir()) == []


def test_no_host_directory_is_reachable_as_a_working_directory(tmp_path: Path) -> None:
    # stockade-runtime holds its state directory (a flock) while it launches: an fd of the builder
    # that reached the init was a host directory a cwd of /proc/self/fd/N entered (CVE-2024-21626).
    from tests.oci_runtime.support import Runtime, command_config, make_bundle, new_id

    runtime = Runtime(tmp_path)
    results = []
    for n in range(3, 10):
        bundle, cid = tmp_path / f"bundle{n}", new_id()
        config = command_config(bundle, "sh", "-c", "pwd; ls ..", cid=cid)
        config["process"]["cwd"] = f"/proc/self/fd/{n}"
        results.append((n, cid, runtime("run", "--bundle", make_bundle(bundle, config), cid)))
    # "ls .." listing the host's state directory (which holds the container's id) is the escape
    assert [(n, proc.stdout) for n, cid, proc in results if cid in proc.stdout] == []
    for n, _, proc in results:
        assert proc.returncode != 0 and "cannot enter the working directory" in proc.stderr, (n, proc.stderr)


def test_a_missing_workdir_is_made_inside_even_past_symlinks(engine: Engine, tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    (root / "tmp" / "inner").mkdir()
    (root / "w").symlink_to("/../../tmp/inner")  # an ordinary symlink: resolved inside the root
    assert engine.ok("run", "--rm", "--rootfs", "-w", "/w/made", root, "pwd").strip() == "/tmp/inner/made"
    assert (root / "tmp" / "inner" / "made").is_dir()
    proc = engine("run", "--rm", "--rootfs", "-w", "/proc/1/root/made", root, "pwd")
    assert proc.returncode == 125 and "cannot enter the working directory" in proc.stderr


def test_mount_targets_through_magic_links_make_nothing_on_the_host(engine: Engine, tmp_path: Path) -> None:
    # While the mounts are made, the init holds a clone of each bind's source (not yet read-only):
    # /data -> /proc/self/fd/N reached it, and making the tmpfs target "/data/madeN" made a directory
    # in the host's read-only source.
    source = tmp_path / "ro-source"
    source.mkdir()
    for n in range(3, 17):
        root = _rootfs(tmp_path, f"root{n}")
        (root / "data").symlink_to(f"/proc/self/fd/{n}")
        proc = engine("run", "--rm", "--rootfs", "-v", f"{source}:/src/a/b:ro", "--tmpfs", f"/data/made{n}",
                      root, "true")
        assert proc.returncode == 125, (n, proc.stdout, proc.stderr)
    assert list(source.iterdir()) == []


def test_a_fifo_for_etc_passwd_is_refused_not_waited_on(engine: Engine, tmp_path: Path) -> None:
    # The user is resolved (as root, before any confinement) from the image's /etc/passwd: a fifo
    # there held the init, or an exec the container had planted it for, until someone wrote to it.
    root = _rootfs(tmp_path)
    (root / "etc" / "passwd").unlink()
    os.mkfifo(root / "etc" / "passwd")
    proc = engine("run", "--rm", "--rootfs", root, "true", timeout=30)
    assert proc.returncode == 125 and "/etc/passwd in the image is a fifo" in proc.stderr
    engine.ok("run", "-d", "--name", "fifo", "--rootfs", _rootfs(tmp_path, "root2"), "sleep", "300")
    engine.ok("exec", "fifo", "sh", "-c", "rm /etc/passwd && mkfifo /etc/passwd")
    proc = engine("exec", "fifo", "true", timeout=30)
    assert proc.returncode == 125 and "/etc/passwd in the image is a fifo" in proc.stderr


def _hostile_image(registry: Any, busybox_layout: Path, work: Path, outside: Path, *, volume: bool) -> str:
    """The busybox image plus a layer of symlinks out of the root: ``/data`` (a ``VOLUME`` if asked),
    ``WORKDIR /wd/made`` (``/wd`` itself the link), ``/etc/hosts`` and ``/etc/resolv.conf``, all pointing to ``outside`` (which the
    image also has, empty, so that inside the root they lead somewhere)."""
    from tests.support.images import skopeo_push

    work.mkdir()
    layout = work / "oci"
    shutil.copytree(busybox_layout, layout)
    bundle = work / "bundle"
    tool = ["umoci", "--log", "error"]
    subprocess.run([*tool, "unpack", "--image", f"{layout}:busybox", str(bundle)], check=True)  # nosec B603 B607
    rootfs = bundle / "rootfs"
    escape = "/../../.." + str(outside)
    (rootfs / "data").symlink_to(escape + "/data")
    (rootfs / "wd").symlink_to(escape)
    (rootfs / outside.relative_to("/")).mkdir(parents=True)  # where the symlinks lead, inside
    for name in ("hosts", "resolv.conf"):
        (rootfs / "etc" / name).unlink(missing_ok=True)
        (rootfs / "etc" / name).symlink_to(escape + "/" + name)
    subprocess.run([*tool, "repack", "--image", f"{layout}:busybox", str(bundle)], check=True)  # nosec B603 B607
    subprocess.run([*tool, "config", "--image", f"{layout}:busybox", *(["--config.volume=/data"] if volume else []),
                    "--config.workingdir=/wd/made", "--config.user=0"], check=True)  # nosec B603 B607
    ref = f"{registry.host}/runtime/hostile:{'volume' if volume else 'plain'}"
    skopeo_push(layout, "busybox", ref)
    return ref


def test_an_images_volume_workdir_and_etc_symlinks_stay_inside(engine: Engine, registry: Any,
                                                                  busybox_layout: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # the image's VOLUME on a symlink out of the root: refused (a volume is never mounted through it)
    ref = _hostile_image(registry, busybox_layout, tmp_path / "v", outside, volume=True)
    proc = engine("run", "--rm", ref, "true")
    assert proc.returncode == 125, (proc.stdout, proc.stderr)
    # the WORKDIR on a symlink out: made inside, and the /etc files bound inside, over the symlinks
    ref = _hostile_image(registry, busybox_layout, tmp_path / "p", outside, volume=False)
    out = engine.ok("run", "--rm", ref, "sh", "-c", "pwd; cat /etc/hosts")
    assert out.splitlines()[0] == str(outside) + "/made" and "localhost" in out
    assert list(outside.iterdir()) == []  # nothing made on the host


def test_a_bind_through_a_symlink_inside_lands_where_it_leads(engine: Engine, tmp_path: Path) -> None:
    # /var/run -> /run, as Debian images have it: the bind is attached on the directory resolved
    # inside the root (it was attempted on the symlink itself, and refused).
    source = tmp_path / "source"
    source.mkdir()
    (source / "f").write_text("volume\n")
    root = _rootfs(tmp_path)
    (root / "var" / "run").symlink_to("/../../run")
    out = engine.ok("run", "--rm", "--rootfs", "-v", f"{source}:/var/run:ro", root, "sh", "-c",
                    "cat /run/f; grep ' /run ' /proc/self/mountinfo")
    assert out.startswith("volume\n") and " ro," in out.splitlines()[1]
