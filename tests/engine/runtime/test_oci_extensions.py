"""The engine's extensions for OCI bundles, without root: sysctls and host devices in the mount plan
(order, validation), the executor's ``before_pivot`` seam, the spec's new fields surviving JSON, and
the command lookup that lets ``create`` fail on a missing program."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runtime import channel, process, rootfs
from engine.spec import Hook, Hooks, Process, Root, Spec
from tests.engine.runtime.recording import RecordingSyscalls


def _spec(**kw: object) -> Spec:
    base: dict[str, object] = dict(process=Process(args=["sh"]), root=Root(path="/r"),
                                   masked_paths=["/proc/kcore"], readonly_paths=["/proc/sys"],
                                   namespaces=["mount", "pid", "network", "ipc"])
    base.update(kw)
    return Spec(**base)  # type: ignore[arg-type]


def test_sysctls_are_written_after_mounts_and_before_read_only_paths() -> None:
    plan = rootfs.plan(_spec(sysctl={"net.ipv4.ip_forward": "1", "kernel.shmmax": "1024"}), "/m",
                       host_network=False)
    kinds = [type(op).__name__ for op in plan.ops]
    sysctls = [op for op in plan.ops if isinstance(op, rootfs.Sysctl)]
    assert sysctls == [rootfs.Sysctl("kernel.shmmax", "1024"), rootfs.Sysctl("net.ipv4.ip_forward", "1")]
    assert kinds.index("Pivot") < kinds.index("Sysctl") < kinds.index("Mask") < kinds.index("ReadOnly")


def test_devices_are_read_only_binds_of_host_nodes_and_privileged_skips_them() -> None:
    plan = rootfs.plan(_spec(devices={"/dev/fuse": "/dev/fuse"}), "/m", host_network=False)
    opened = [op for op in plan.ops if isinstance(op, rootfs.OpenSource) and op.key.startswith("device:")]
    bound = [op for op in plan.ops if isinstance(op, rootfs.BindFd) and op.key.startswith("device:")]
    assert opened == [rootfs.OpenSource("device:/dev/fuse", "/dev/fuse", recursive=False)]
    assert len(bound) == 1 and bound[0].target == "/dev/fuse" and bound[0].flags & rootfs.sc.MS_RDONLY
    privileged = rootfs.plan(_spec(devices={"/dev/fuse": "/dev/fuse"}, privileged=True), "/m", host_network=False)
    assert not [op for op in privileged.ops if getattr(op, "key", "").startswith("device:")]


@pytest.mark.parametrize("key", ["kernel..x", "net/ipv4/../../x", "net", ".net.x", "net.x/y"])
def test_sysctl_names_cannot_walk_out_of_proc_sys(tmp_path: Path, key: str) -> None:
    ex = rootfs.Executor(RecordingSyscalls(), root=str(tmp_path))
    with pytest.raises(rootfs.RootfsError, match="invalid sysctl name"):
        ex.run(rootfs.Plan([rootfs.Sysctl(key, "1")]))


def test_sysctl_is_written_under_the_container_proc(tmp_path: Path) -> None:
    target = tmp_path / "proc" / "sys" / "net" / "ipv4"
    target.mkdir(parents=True)
    (target / "ip_forward").write_text("0")
    rootfs.Executor(RecordingSyscalls(), root=str(tmp_path)).run(rootfs.Plan([rootfs.Sysctl("net.ipv4.ip_forward",
                                                                                            "1")]))
    assert (target / "ip_forward").read_text() == "1"


def test_before_pivot_runs_once_just_before_the_pivot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fake = RecordingSyscalls()
    seen: list[int] = []
    ex = rootfs.Executor(fake, root=str(tmp_path), before_pivot=lambda: seen.append(len(fake.calls)))
    ex.run(rootfs.Plan([rootfs.MakeSlave(), rootfs.Pivot(str(tmp_path))]))
    assert seen == [1]  # after MakeSlave's mount, before pivot_root
    assert fake.calls[1][0] == "pivot_root"


def test_new_spec_fields_survive_json() -> None:
    spec = _spec(namespace_paths={"network": "/run/netns/pod"}, sysctl={"net.core.somaxconn": "1024"},
                 devices={"/dev/fuse": "/dev/fuse"},
                 hooks=Hooks(create_container=[Hook("/bin/hook", ["hook", "a"], ["X=1"], 5)],
                             start_container=[Hook("/bin/true")]),
                 process=Process(args=["sh"], umask=0o077))
    again = Spec.from_json(spec.to_json())
    assert again == spec and again.hooks.create_container[0].timeout == 5 and again.process.umask == 0o077


def test_find_command_searches_path_like_exec(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "bin" / "plain").write_text("data")
    env = {"PATH": f"/nonexistent:{tool.parent}"}
    assert process.find_command("tool", env) == str(tool)
    assert process.find_command(str(tool), {}) == str(tool)
    with pytest.raises(channel.CommandError) as missing:
        process.find_command("nope", env)
    assert missing.value.exit_code == 127 and "executable file not found in $PATH" in str(missing.value)
    with pytest.raises(channel.CommandError) as denied:  # no x bit at all: not even root may run it
        process.find_command("plain", env)
    assert denied.value.exit_code == 126
