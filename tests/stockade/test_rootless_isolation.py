"""A rootless user's Stockade, seen the way podman-rootless users rely on it: private to that user
(and root's store private to root), honest about what it cannot enforce, and clear when the home
filesystem cannot hold overlays.

Real parts only: users made here with useradd (their /etc/subuid ranges from useradd), the real CLI
run as them, the busybox test image from the session's loopback registry, a real overlayfs mount as
a HOME for the filesystem case.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess  # nosec B404 # useradd, mount, cat as another user, with argument lists
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.engine.runtime.support import busybox_image  # noqa: F401 - fixture
from tests.stockade.test_rootless_store import _make_user, _remove_user
from tests.stockade.test_run_rootless import RootlessUser

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users; needs root")


@pytest.fixture(scope="module")
def alice() -> Iterator[RootlessUser]:
    user = _make_user("stk-iso-a")
    try:
        if user.name not in Path("/etc/subuid").read_text():
            pytest.skip("useradd did not allocate subordinate ids")
        yield user
    finally:
        _remove_user(user)


@pytest.fixture(scope="module")
def mallory() -> Iterator[RootlessUser]:
    user = _make_user("stk-iso-m")
    try:
        yield user
    finally:
        _remove_user(user)


def _as(user: RootlessUser, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, user=user.uid, group=user.gid, extra_groups=[], env=user.env(),  # nosec B603
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)


def test_a_second_user_cannot_read_the_first_users_containers(alice: RootlessUser, mallory: RootlessUser,
                                                             busybox_image: str) -> None:
    """Any user can read a container's upper directory (so its id) in /proc/PID/mountinfo: with a
    store root others could traverse, its json-file log, writable layer and volumes were readable
    by them. The rootless root is 0700, as podman's, and an older 0711 root is narrowed."""
    store = alice.home / ".local/share/stockade"
    store.mkdir(parents=True, mode=0o711)
    os.chown(store, alice.uid, alice.gid)
    alice.ok("volume", "create", "notes")
    assert stat.S_IMODE(store.stat().st_mode) == 0o700  # the first write narrows it
    cid = alice.ok("run", "-d", "-u", "0", "-v", "notes:/notes", busybox_image, "sh", "-c",
                   "echo the-secret; echo s > /notes/n; sleep 60").strip()
    try:
        log = store / "containers" / cid / f"{cid}-json.log"
        for _ in range(100):
            if "the-secret" in alice.ok("logs", cid):
                break
        assert "the-secret" in log.read_text()
        for path in (log, store / "containers" / cid / "hosts", store / "volumes/notes/_data/n"):
            read = _as(mallory, "cat", str(path))
            assert read.returncode != 0 and "Permission denied" in read.stderr, (path, read.stdout)
        listing = _as(mallory, "ls", str(store / "containers" / cid / "upper"))
        assert listing.returncode != 0
    finally:
        alice.ok("rm", "-f", cid)
        alice.ok("volume", "rm", "notes")


def test_a_store_root_another_user_made_is_refused(alice: RootlessUser, mallory: RootlessUser,
                                                   busybox_image: str) -> None:
    """``--root`` naming a directory another user made (first, in /tmp) would let that user replace
    the layers and records under it: the first write is refused with one line, nothing is written."""
    planted = Path("/tmp") / f"stk-planted-{mallory.name}"
    planted.mkdir(mode=0o777)
    try:
        os.chmod(planted, 0o777)
        os.chown(planted, mallory.uid, mallory.gid)
        for code, argv in ((2, ("pull", busybox_image)), (2, ("volume", "create", "v")),
                           (125, ("run", "--rm", busybox_image, "true"))):  # run: Docker's 125
            proc = alice("--root", planted, *argv)
            assert proc.returncode == code, (argv, proc.stderr)
            assert proc.stderr.splitlines() == [f"stockade: error: store root {planted} belongs to uid "
                                                f"{mallory.uid}, not to you: use a directory of your own (--root)"]
        # Nothing of the store; the gate's cache (read only from files this user wrote) may be there.
        assert [p.name for p in planted.iterdir()] in ([], ["cache"])
    finally:
        shutil.rmtree(planted)


def _setuid_image(directory: Path) -> Path:
    """A rootfs tarball whose /bin/id is setuid, owned by root (as su, mount, pkexec are in images)."""
    import tarfile

    tarball = directory / "setuid.tar"
    with tarfile.open(tarball, "w") as tar:
        folder = tarfile.TarInfo("bin")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        program = Path("/usr/bin/id").read_bytes()
        entry = tarfile.TarInfo("bin/id")
        entry.size, entry.mode, entry.uid, entry.gid = len(program), 0o4755, 0, 0
        tar.addfile(entry, io.BytesIO(program))
    os.chmod(tarball, 0o644)
    return tarball


def test_root_store_hides_setuid_layer_files_from_other_users(mallory: RootlessUser) -> None:
    """Layer directories are named by chain ids anyone can compute for a public image: through root's
    store root (0711), a local user ran an image's setuid-root binary from the host, with euid 0. The
    root is 0700 now, as /var/lib/docker is 0710."""
    base = Path(tempfile.mkdtemp(prefix="stk-rootstore-"))
    os.chmod(base, 0o755)
    try:
        store = base / "store"
        env = {**os.environ, "STOCKADE_CONFIG": "/dev/null"}
        subprocess.run([sys.executable, "-m", "stockade", "--root", str(store), "import",  # nosec B603
                        str(_setuid_image(base)), "setuid:1"], check=True, capture_output=True, env=env)
        [program] = list((store / "layers/sha256").glob("*/diff/bin/id"))
        assert program.stat().st_mode & stat.S_ISUID and program.stat().st_uid == 0
        with pytest.raises(PermissionError):  # before: it ran, printing 0
            _as(mallory, str(program), "-u")
        assert stat.S_IMODE(store.stat().st_mode) == 0o700
    finally:
        shutil.rmtree(base)


def test_a_second_user_cannot_read_run_arguments_from_the_monitor(alice: RootlessUser, mallory: RootlessUser,
                                                                  busybox_image: str) -> None:
    """A detached container's monitor is a fork of ``run``: its command line (world-readable in
    /proc/PID/cmdline) kept ``-e SECRET=…`` for the container's whole life. It names only the
    container now; the container still gets the variable."""
    cid = alice.ok("run", "-d", "-e", "SECRET=hunter2-in-argv", busybox_image, "sleep", "60").strip()
    try:
        [doc] = json.loads(alice.ok("inspect", "-o", "json", cid))
        monitor = doc["Stockade"]["Monitor"]["Pid"]
        seen = _as(mallory, "cat", f"/proc/{monitor}/cmdline")
        assert seen.returncode == 0, seen.stderr
        assert seen.stdout.rstrip("\0").split("\0") == [f"stockade monitor {cid[:12]}"]
        assert alice.ok("exec", cid, "sh", "-c", "echo $SECRET").strip() == "hunter2-in-argv"
    finally:
        alice.ok("rm", "-f", cid)


def test_volumes_a_container_wrote_are_removed(alice: RootlessUser, busybox_image: str) -> None:
    """What a container writes into a volume as its users belongs to the user's subordinate ids: the
    user cannot delete it, so removal runs in the user's namespace. ``volume rm`` failed with
    'Permission denied' and left the renamed tree hidden in the store; ``rm -v`` too."""
    write = "mkdir /v/sub && echo x > /v/sub/f && chown -R 1000:1000 /v/sub && chmod 500 /v/sub"
    alice.ok("volume", "create", "written")
    alice.ok("run", "--rm", "-u", "0", "-v", "written:/v", busybox_image, "sh", "-c", write)
    cid = alice.ok("run", "-d", "-u", "0", "-v", "/v", busybox_image, "sh", "-c", f"{write}; sleep 60").strip()
    volumes = alice.home / ".local/share/stockade/volumes"
    listed = json.loads(alice.ok("volume", "ls", "-o", "json"))
    [anonymous] = [v["Name"] for v in listed if v["Name"] != "written"]
    for _ in range(100):
        if (volumes / anonymous / "_data/sub/f").exists():
            break
        time.sleep(0.1)
    assert (volumes / "written/_data/sub").stat().st_uid != alice.uid
    alice.ok("volume", "rm", "written")
    alice.ok("rm", "-f", "-v", cid)
    assert sorted(os.listdir(volumes)) == []

    # What an interrupted (or, before, a failed) removal left after its rename: prune deletes it.
    alice.ok("volume", "create", "left")
    alice.ok("run", "--rm", "-u", "0", "-v", "left:/v", busybox_image, "sh", "-c", write)
    os.rename(volumes / "left", volumes / ".left.removing-0123abcd")
    alice.ok("volume", "prune", "-f")
    assert sorted(os.listdir(volumes)) == []


def test_unshare_deletes_what_a_container_user_wrote_into_home(alice: RootlessUser, busybox_image: str) -> None:
    """A container's uid 1000 is a subordinate id on the host: what it writes through
    ``-v ~/dir:/data`` the user can neither delete nor chown. ``stockade unshare`` (podman's) runs a
    command as root of the user's namespace, where it can; root is told it needs no such thing."""
    shared = alice.home / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    os.chown(shared, alice.uid, alice.gid)
    alice.ok("run", "--rm", "-v", f"{shared}:/data", busybox_image, "sh", "-c",
             "mkdir /data/made && echo x > /data/made/f")
    assert (shared / "made").stat().st_uid != alice.uid
    assert _as(alice, "rm", "-rf", str(shared)).returncode != 0
    inside = alice.ok("unshare", "sh", "-c", "id -u; head -n 1 /proc/self/uid_map").split()
    assert inside == ["0", "0", str(alice.uid), "1"]
    assert alice("unshare", "sh", "-c", "exit 3").returncode == 3
    alice.ok("unshare", "rm", "-rf", shared)
    assert not shared.exists()
    as_root = subprocess.run([sys.executable, "-m", "stockade", "unshare", "true"],  # nosec B603
                             capture_output=True, text=True)
    assert as_root.returncode == 2 and "unshare is for rootless users" in as_root.stderr


def test_limits_ignored_on_cgroup_v1_are_claimed_nowhere(alice: RootlessUser, busybox_image: str) -> None:
    """Rootless on cgroup v1 sets no limit (podman's warning): a policy requiring a memory limit must
    refuse the container rather than admit the --memory it was shown, and inspect (which the audit
    reads) must not report a limit nothing enforces."""
    from engine.host import probe_cgroups

    if probe_cgroups().manager_for(rootless=True) != "none":
        pytest.skip("this host delegates cgroups to users: rootless limits apply")
    policy = alice.home / "limits.yaml"
    policy.write_text("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {name: limits, revision: 1}\n"
                      "spec:\n  profile: privileged:v1\n  runtime:\n    resources:\n      required: [memory]\n")
    refused = alice("run", "--rm", "--policy", policy, "-m", "64m", busybox_image, "true")
    assert refused.returncode == 122, refused.stderr
    assert "a memory limit is required" in refused.stderr
    assert "resource limits are not supported and ignored on cgroups v1 rootless systems" in refused.stderr

    cid = alice.ok("run", "-d", "-m", "64m", "--pids-limit", "50", busybox_image, "sleep", "60").strip()
    try:
        [doc] = json.loads(alice.ok("inspect", "-o", "json", cid))
        assert (doc["HostConfig"]["Memory"], doc["HostConfig"]["PidsLimit"]) in ((0, None), (0, 0))
    finally:
        alice.ok("rm", "-f", cid)

    defaults = alice.home / "defaults.yaml"
    defaults.write_text("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {name: defaults, revision: 1}\n"
                        "spec:\n  profile: privileged:v1\n  runtime:\n    resources:\n"
                        "      defaults: {memory: 512Mi}\n")
    for _ in ("decided", "cached"):
        proc = alice("run", "-d", "--policy", defaults, busybox_image, "sleep", "60")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.splitlines() == [
            "stockade: warning: policy defaults@1: default limits (memory) not applied: resource limits are not "
            "supported and ignored on cgroups v1 rootless systems"]
        [doc] = json.loads(alice.ok("inspect", "-o", "json", proc.stdout.strip()))
        alice.ok("rm", "-f", proc.stdout.strip())
        assert doc["HostConfig"]["Memory"] == 0


def test_a_home_on_overlayfs_is_one_clear_error(busybox_image: str) -> None:
    """overlayfs cannot take an upper directory on overlayfs (a HOME inside a container): the run
    fails with one line saying so and naming the copy driver, not a bare EINVAL; with the copy
    driver the same user runs."""
    layers = Path(tempfile.mkdtemp(prefix="stk-ovl-"))  # the user must reach it: not under pytest's 0700 tmp
    os.chmod(layers, 0o755)
    for sub in ("lower", "upper", "work", "mnt"):
        (layers / sub).mkdir(parents=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",  # nosec B603 B607
                    f"lowerdir={layers / 'lower'},upperdir={layers / 'upper'},workdir={layers / 'work'}",
                    str(layers / "mnt")], check=True, capture_output=True)
    user = _make_user("stk-iso-o")
    try:
        home = layers / "mnt" / user.name
        home.mkdir()
        (home / ".config/stockade").mkdir(parents=True)
        config = (user.home / ".config/stockade/config.toml").read_text()
        (home / ".config/stockade/config.toml").write_text(config)
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(home)], check=True)  # nosec B603 B607
        user.home = home
        failed = user("run", "--rm", busybox_image, "true")
        assert failed.returncode == 125
        [line] = failed.stderr.splitlines()
        assert line.startswith("stockade: error: cannot mount overlayfs for the container's root")
        assert '[storage] driver = "copy"' in line and str(home) in line
        (home / ".config/stockade/config.toml").write_text(config + '[storage]\ndriver = "copy"\n')
        assert user.ok("run", "--rm", busybox_image, "id", "-u").strip() == "1000"
    finally:
        user.home = Path("/home") / user.name
        _remove_user(user)
        subprocess.run(["umount", str(layers / "mnt")], capture_output=True)  # nosec B603 B607
        shutil.rmtree(layers)


def test_an_unusable_xdg_runtime_dir_falls_back_to_the_data_dir(alice: RootlessUser, busybox_image: str) -> None:
    """XDG_RUNTIME_DIR missing, or set to a shared directory such as /tmp: runtime state goes under the
    user's own data directory, nothing is made in the shared one, and the run works."""
    shared = Path("/tmp") / f"stk-shared-{alice.name}"
    shared.mkdir(mode=0o1777)
    os.chmod(shared, 0o1777)
    try:
        for runtime_dir in (str(shared), "/run/user/does-not-exist"):
            env = {**alice.env(), "XDG_RUNTIME_DIR": runtime_dir}
            proc = subprocess.run([sys.executable, "-m", "stockade", "run", "--rm", busybox_image, "true"],  # nosec
                                  user=alice.uid, group=alice.gid, extra_groups=[], env=env, capture_output=True,
                                  text=True, stdin=subprocess.DEVNULL, timeout=120)
            assert proc.returncode == 0, proc.stderr
        assert list(shared.iterdir()) == []
    finally:
        shutil.rmtree(shared)

