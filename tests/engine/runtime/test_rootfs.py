"""The mount plan (pure data) and its executor, run against a scratch root with a recording double."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from engine.runtime import rootfs
from engine.runtime import syscalls as sc
from engine.spec import Mount, Process, Root, Spec
from tests.engine.runtime.recording import RecordingSyscalls


def _spec(**kw) -> Spec:
    base = dict(process=Process(args=["sh"]), root=Root(layers=["/l/a", "/l/b"], upper="/u", work="/w"),
                masked_paths=["/proc/kcore", "/sys/firmware"], readonly_paths=["/proc/sys"],
                etc_files={"/etc/hosts": "/state/hosts"}, namespaces=["mount", "pid", "network"])
    base.update(kw)
    return Spec(**base)


def _kinds(plan: rootfs.Plan) -> list[str]:
    return [type(op).__name__ for op in plan.ops]


def test_order_host_side_then_container_side() -> None:
    plan = rootfs.plan(_spec(), "/mnt/root", host_network=False)
    kinds = _kinds(plan)
    assert kinds[0] == "MakeSlave"
    # sources are cloned before the root is mounted, so no clone of a host directory contains it
    assert kinds.index("Overlay") == max(i for i, k in enumerate(kinds) if k == "OpenSource") + 1
    pivot = kinds.index("Pivot")
    assert all(k in ("MakeSlave", "Overlay", "OpenSource", "MountFs") for k in kinds[:pivot])
    # proc and sysfs before the pivot (a user namespace needs the host's proc still visible)
    assert plan.ops[pivot - 2] == rootfs.MountFs("proc", "/proc", sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV)
    assert isinstance(plan.ops[pivot - 1], rootfs.MountFs) and plan.ops[pivot - 1].fstype == "sysfs"
    assert kinds.index("Mask") > kinds.index("BindFd")  # masks after every other mount
    assert "RemountRoot" not in kinds
    overlay = plan.ops[kinds.index("Overlay")]
    assert isinstance(overlay, rootfs.Overlay) and overlay.lower == ["/l/b", "/l/a"]  # top first


def test_every_mount_but_devices_and_devpts_is_nodev() -> None:
    spec = _spec(mounts=[Mount("/data", "bind", "/srv", ["rbind", "rw"]),
                         Mount("/run", "tmpfs", "tmpfs", ["size=1m"])], root=Root(path="/r", readonly=True))
    plan = rootfs.plan(spec, "/mnt/root", host_network=False)
    for op in plan.ops:
        if isinstance(op, rootfs.MountFs) and op.fstype != "devpts":
            assert op.flags & sc.MS_NODEV, op
        if isinstance(op, rootfs.BindFd) and not op.key.startswith("dev:"):
            assert op.flags & sc.MS_NODEV, op
        if isinstance(op, rootfs.BindFd) and op.key.startswith("dev:"):
            assert op.flags & sc.MS_RDONLY, op  # the host's node: read-only, so no chmod through it
    assert isinstance(plan.ops[-1], rootfs.RemountRoot)


def test_privileged_and_user_namespace_variants() -> None:
    priv = rootfs.plan(_spec(privileged=True), "/m", host_network=False)
    assert "Mask" not in _kinds(priv) and rootfs.OpenSource("dev", "/dev") in priv.ops
    userns = rootfs.plan(_spec(namespaces=["user", "mount", "pid"]), "/m", host_network=True)
    sysfs = [op for op in userns.ops if isinstance(op, rootfs.MountFs) and op.fstype == "sysfs"][0]
    assert sysfs.fallback_key == "sys" and rootfs.OpenSource("sys", "/sys") in userns.ops


def test_unsupported_mount_type_and_no_root() -> None:
    with pytest.raises(rootfs.RootfsError, match="mount type 'nfs'"):
        rootfs.plan(_spec(mounts=[Mount("/x", "nfs", "srv:/x")]), "/m", host_network=False)
    with pytest.raises(rootfs.RootfsError, match="no root filesystem"):
        rootfs.plan(_spec(root=Root()), "/m", host_network=False)


def test_parse_options() -> None:
    assert rootfs.parse_options(["ro", "nosuid", "size=64m", "mode=1777", "z"]) == \
        (sc.MS_RDONLY | sc.MS_NOSUID, "size=64m,mode=1777")
    assert rootfs.parse_options(["ro", "rw"]) == (0, "")


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake container root plus host-side sources for the executor."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "root"
    for d in ("proc/sys", "sys", "etc"):
        (root / d).mkdir(parents=True)
    (root / "proc" / "kcore").write_text("secret")
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    (tmp_path / "vol").mkdir()
    return tmp_path


def _run(scratch: Path, spec: Spec, fail: dict[str, OSError] | None = None) -> RecordingSyscalls:
    fake = RecordingSyscalls(fail)
    plan = rootfs.plan(spec, str(scratch / "root"), host_network=False)
    rootfs.Executor(fake, root=str(scratch / "root")).run(plan)
    return fake


def test_executor_makes_targets_and_masks(scratch: Path) -> None:
    spec = _spec(root=Root(path=str(scratch / "root")), etc_files={"/etc/hosts": str(scratch / "hosts")},
                 mounts=[Mount("/data/v", "bind", str(scratch / "vol"), ["rbind", "ro"])])
    fake = _run(scratch, spec)
    root = scratch / "root"
    assert (root / "dev" / "null").is_file() and (root / "etc" / "hosts").is_file()
    assert (root / "data" / "v").is_dir() and os.path.islink(root / "dev" / "ptmx")
    moves = {target: source for _, source, target in fake.of("move_mount")}
    assert moves[str(root / "data" / "v")] == str(scratch / "vol")
    assert moves[str(root / "dev" / "null")] == "/dev/null"
    # masked with a clone of the host's /dev/null, not with whatever the container's path names
    assert [c for c in fake.of("mount") if c[2] == str(root / "proc" / "kcore")] == []
    assert moves[str(root / "proc" / "kcore")] == "/dev/null"
    assert fake.of("clone_tree") == [("clone_tree", "/dev/null")]
    firmware = [c for c in fake.of("mount") if c[2].endswith("sys/firmware")]
    assert firmware == []  # absent in this root: nothing to mask
    assert fake.of("pivot_root") == [("pivot_root", ".", ".")]


def test_executor_fallbacks(scratch: Path) -> None:
    spec = _spec(root=Root(path=str(scratch / "root")), etc_files={},
                 namespaces=["user", "mount", "pid", "network"])
    fake = _run(scratch, spec, fail={"mount:devpts": OSError(errno.EINVAL, "gid not mapped"),
                                     "mount:sysfs": OSError(errno.EPERM, "not our netns")})
    devpts = [c for c in fake.of("mount") if c[3] == "devpts"]
    assert devpts[0][5] == "newinstance,ptmxmode=0666,mode=0620"  # retried without gid=5
    sys_move = [c for c in fake.of("move_mount") if c[2].endswith("/sys")]
    assert sys_move and sys_move[0][1] == "/sys"  # the host's /sys bound instead


def test_executor_refuses_symlinked_proc(scratch: Path) -> None:
    root = scratch / "root"
    (root / "proc" / "sys").rmdir()
    (root / "proc" / "kcore").unlink()
    (root / "proc").rmdir()
    (root / "proc").symlink_to("/etc")
    with pytest.raises(rootfs.RootfsError, match="/proc in the image is not a directory"):
        _run(scratch, _spec(root=Root(path=str(root)), etc_files={}))


def test_long_layer_lists_use_relative_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "layers"
    layers = [str(base / f"{i:064x}" / "diff") for i in range(50)]
    for layer in layers:
        os.makedirs(layer)
    fake = RecordingSyscalls()
    ex = rootfs.Executor(fake, root=str(tmp_path))
    ex.run(rootfs.Plan([rootfs.Overlay("/target", layers, "/u", "/w")]))
    (_, _, _, fstype, _, data), = fake.of("mount")
    assert fstype == "overlay" and str(base) not in data and len(data) < 4096
    assert os.getcwd() == str(tmp_path)  # restored
