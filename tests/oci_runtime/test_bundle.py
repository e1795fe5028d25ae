"""``config.json`` to the engine's spec, the cgroup path forms, and a bundle as the node policy reads
it: pure translation, against the configurations ``runc spec`` and ``crun spec`` really write, and
against malformed and hostile ones (no root needed)."""

from __future__ import annotations

import copy
import json
import re
import resource
from pathlib import Path
from typing import Any

import pytest

from stockade.oci_runtime import bundle, cgroupspath, nodepolicy
from stockade.oci_runtime.bundle import BundleError
from tests.oci_runtime.support import tool_spec

DEFAULT_CAPS = 0x00000000A80425FB  # Docker's default 14


@pytest.fixture(scope="module")
def runc_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return tool_spec("runc", tmp_path_factory.mktemp("runc-spec"))


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def _translate(config: dict[str, Any], where: Path) -> bundle.Translated:
    return bundle.translate(config, str(where))


def test_runc_spec_bundle(runc_config: dict[str, Any], bundle_dir: Path) -> None:
    tr = _translate(runc_config, bundle_dir)
    spec = tr.spec
    assert spec.root.path == str(bundle_dir / "rootfs") and spec.root.readonly
    assert sorted(spec.namespaces) == ["ipc", "mount", "network", "pid", "uts"] and spec.namespace_paths == {}
    assert spec.process.user == "0:0" and spec.process.terminal and spec.process.no_new_privileges
    assert spec.process.capabilities.ambient == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert spec.mounts == []  # proc, sysfs, /dev, devpts, shm, mqueue are the engine's; cgroup is not mounted
    assert "/proc/kcore" in spec.masked_paths and "/proc/sys" in spec.readonly_paths
    assert spec.hostname == "runc" and not tr.privileged and tr.capabilities_given
    assert any("cgroup filesystem" in message for _, message in tr.notes)


def test_crun_spec_bundle(tmp_path: Path, bundle_dir: Path) -> None:
    tr = _translate(tool_spec("crun", tmp_path / "crun"), bundle_dir)
    assert tr.spec.process.args == ["sh"] and "mount" in tr.spec.namespaces and tr.spec.hostname == "crun"


def test_mounts_devices_hooks_and_joined_namespaces(runc_config: dict[str, Any], bundle_dir: Path) -> None:
    config = copy.deepcopy(runc_config)
    (bundle_dir / "data").mkdir()
    config["mounts"] += [{"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]},
                         {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "size=1m", "tmpcopyup"]},
                         {"destination": "/etc/hosts", "source": "/etc/hosts", "options": ["bind", "rprivate"]}]
    config["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]
    config["linux"]["namespaces"] = [{"type": "mount"}, {"type": "pid"},
                                     {"type": "network", "path": "/proc/self/ns/net"}, {"type": "uts"}]
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    config["hooks"] = {"prestart": [{"path": "/bin/true"}], "createContainer": [{"path": "/bin/true", "timeout": 3}],
                       "poststop": [{"path": "/bin/true", "args": ["true", "x"], "env": ["A=1"]}]}
    tr = _translate(config, bundle_dir)
    mounts = {m.destination: m for m in tr.spec.mounts}
    assert mounts["/data"].source == str(bundle_dir / "data") and mounts["/data"].options == ["rbind", "ro"]
    assert mounts["/run"].type == "tmpfs" and mounts["/run"].options == ["nosuid", "size=1m"]
    assert mounts["/etc/hosts"].options == ["bind"]
    assert tr.spec.devices == {}  # /dev/null is one of the engine's six
    config["linux"]["devices"].append({"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11})
    assert _translate(config, bundle_dir).spec.devices == {"/dev/kmsg": "/dev/kmsg"}
    assert tr.spec.namespace_paths == {"network": "/proc/self/ns/net"} and "network" not in tr.spec.namespaces
    assert tr.spec.sysctl == {"net.ipv4.ip_forward": "1"}
    assert [h.path for h in tr.hooks["prestart"]] == ["/bin/true"] and tr.hooks["createRuntime"] == []
    assert tr.spec.hooks.create_container[0].timeout == 3 and tr.hooks["poststop"][0].env == ["A=1"]


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(ociVersion="2.0.0"), "ociVersion '2.0.0' is not supported"),
    (lambda c: c["process"].update(args=[]), "process.args must name the program"),
    (lambda c: c["process"].update(args="sh"), "process.args must be an array"),
    (lambda c: c["process"]["user"].update(uid=-1), "process.user.uid must be an integer"),
    (lambda c: c["process"].update(cwd="relative"), "process.cwd must be an absolute path"),
    (lambda c: c["linux"].update(namespaces=[{"type": "pid"}]), "must create a mount namespace"),
    (lambda c: c["linux"].update(namespaces=[{"type": "mount"}, {"type": "mount"}]), "listed twice"),
    (lambda c: c["linux"].update(namespaces=[{"type": "mount"}, {"type": "time"}]), "unknown namespace 'time'"),
    (lambda c: c["linux"].update(namespaces=[{"type": "mount"}]), "hostname needs the container's own uts"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}), "needs linux.uidMappings"),
    (lambda c: c["linux"].update(sysctl={"kernel.panic": "1"}), "kernel.panic is not namespaced"),
    (lambda c: c["linux"].update(sysctl={"net.ipv4.ip_forward": 1}), "linux.sysctl.net.ipv4.ip_forward must be"),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "nfs", "source": "srv:/x"}),
     "a nfs mount at /x is not supported"),
    (lambda c: c["mounts"].append({"destination": "x", "type": "tmpfs"}), "mounts[7].destination must be an abs"),
    (lambda c: c["linux"].update(devices=[{"path": "/dev/nosuchdev", "type": "c", "major": 10, "minor": 229}]),
     "no matching device node"),
    (lambda c: c["linux"].update(devices=[{"path": "/dev/kmsg", "type": "b", "major": 1, "minor": 11}]),
     "/dev/kmsg (b 1:11) has no matching device node"),
    (lambda c: c["linux"].update(devices=[{"path": "/dev/kmsg", "type": "c", "major": 9, "minor": 9}]),
     "/dev/kmsg (c 9:9) has no matching device node"),
    (lambda c: c.update(hooks={"prestart": [{"path": "relative"}]}), "hooks.prestart[0].path must be an absolute"),
    (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]), "unknown rlimit"),
    (lambda c: c["root"].update(path="missing"), "is not a directory"),
    (lambda c: c["process"]["capabilities"].update(effective=["CAP_SYS_ADMIN"]),
     "CAP_SYS_ADMIN effective but not permitted"),
])
def test_malformed_configs_are_one_line_naming_the_field(runc_config: dict[str, Any], bundle_dir: Path,
                                                         change: Any, message: str) -> None:
    config = copy.deepcopy(runc_config)
    change(config)
    with pytest.raises(BundleError, match=re.escape(message)):
        if "ociVersion" in message:
            (bundle_dir / "config.json").write_text(json.dumps(config))
            bundle.load(str(bundle_dir))
        _translate(config, bundle_dir)


def test_load_refuses_what_is_not_a_json_object(bundle_dir: Path) -> None:
    for raw, message in ((b"[]", "must be a JSON object"), (b"{", "not valid JSON"), (b"\xff", "not valid JSON")):
        (bundle_dir / "config.json").write_bytes(raw)
        with pytest.raises(BundleError, match=message):
            bundle.load(str(bundle_dir))
    (bundle_dir / "config.json").unlink()
    with pytest.raises(BundleError, match="cannot read .*config.json"):
        bundle.load(str(bundle_dir))


def test_rlimits_above_the_hard_limit_are_clamped_with_a_warning(runc_config: dict[str, Any],
                                                                 bundle_dir: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    config = copy.deepcopy(runc_config)
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 2**64 - 1, "hard": 2**64 - 1},
                                    {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    tr = _translate(config, bundle_dir)
    nofile, core = tr.spec.process.rlimits
    if hard != resource.RLIM_INFINITY:
        assert (nofile.soft, nofile.hard) == (hard, hard)
        assert ("warning", f"RLIMIT_NOFILE unlimited:unlimited clamped to {hard}:{hard}: this host's hard limit is "
                           f"{hard} (raising it needs CAP_SYS_RESOURCE)") in tr.notes
    assert (core.soft, core.hard) == (0, 0)


def test_privileged_is_podmans_annotation_or_everything_open(runc_config: dict[str, Any], bundle_dir: Path) -> None:
    config = copy.deepcopy(runc_config)
    config["annotations"] = {"io.podman.annotations.privileged": "TRUE"}
    assert _translate(config, bundle_dir).privileged
    config = copy.deepcopy(runc_config)
    every = sorted(bundle.host_capabilities())  # containerd grants its own set: no CAP_SYS_RESOURCE here
    config["process"]["capabilities"] = {"bounding": every, "effective": every, "permitted": every}
    assert not _translate(config, bundle_dir).privileged  # /sys still read-only
    for m in config["mounts"]:
        if m["type"] == "sysfs":
            m["options"].remove("ro")
    assert _translate(config, bundle_dir).privileged
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO"}
    assert not _translate(config, bundle_dir).privileged


@pytest.mark.parametrize("path, systemd, expected", [
    ("/libpod_parent/libpod-abc", False, "libpod_parent/libpod-abc"),
    ("default/c1", False, "default/c1"),
    ("", False, "stockade-runtime/c1"),
    ("system.slice:cri-containerd:c1", True, "system.slice/cri-containerd-c1.scope"),
    ("kubepods-besteffort-pod12.slice:cri-containerd:c1", True,
     "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-c1.scope"),
    (":libpod:c1", True, "system.slice/libpod-c1.scope"),
    ("", True, "system.slice/stockade-runtime-c1.scope"),
])
def test_cgroup_paths(path: str, systemd: bool, expected: str) -> None:
    assert cgroupspath.relative(path, "c1", systemd=systemd) == expected


@pytest.mark.parametrize("path, systemd", [("/a/../../etc", False), ("../x", False), ("a:b", True),
                                           ("bad:p:c1", True), ("x-.slice:p:c", True)])
def test_cgroup_paths_refused(path: str, systemd: bool) -> None:
    with pytest.raises(cgroupspath.CgroupPathError):
        cgroupspath.relative(path, "c1", systemd=systemd)


def test_policy_document(runc_config: dict[str, Any], bundle_dir: Path) -> None:
    config = copy.deepcopy(runc_config)
    cid = "c0ffee"
    (bundle_dir / cid).mkdir()
    (bundle_dir / cid / "hosts").write_text("")
    config["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": f"{bundle_dir}/{cid}/hosts",
                             "options": ["rbind", "ro"]})
    config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "cpu": {"quota": 50000, "period": 100000}}
    config["annotations"] = {"io.kubernetes.cri.image-name": "registry.example/app:1"}
    doc = nodepolicy.document(_translate(config, bundle_dir), cid)
    c = doc["container"]
    assert doc["image"] == {"reference": "registry.example/app:1", "config": None}
    assert c["user"] == {"uid": 0, "gid": 0} and c["privileged"] is False
    assert c["readOnlyRootFilesystem"] is True and c["noNewPrivileges"] is True and c["seccomp"] is None
    assert c["capabilities"] == {"add": ["AUDIT_WRITE", "KILL", "NET_BIND_SERVICE"], "drop": ["ALL"]}
    assert c["namespaces"] == {"network": "private", "pid": "private", "ipc": "private", "uts": "private",
                               "user": "host", "cgroup": "host"}
    assert c["mounts"] == [{"type": "bind", "source": f"{bundle_dir}/{{id}}/hosts", "destination": "/etc/hosts",
                            "readOnly": True, "kind": None}]
    assert c["resources"] == {"memory": 64 << 20, "cpus": 0.5}


def test_seccomp_facts(runc_config: dict[str, Any], bundle_dir: Path) -> None:
    config = copy.deepcopy(runc_config)
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                  "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"}]}
    assert nodepolicy.seccomp_fact(_translate(config, bundle_dir)) == {"type": "Unconfined"}
    config["linux"]["seccomp"]["syscalls"].append({"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"})
    fact = nodepolicy.seccomp_fact(_translate(config, bundle_dir))
    assert fact is not None and fact["type"] == "Localhost" and len(fact["sha256"]) == 64


def test_apply_fills_what_the_bundle_left_unset(runc_config: dict[str, Any], bundle_dir: Path) -> None:
    config = copy.deepcopy(runc_config)
    del config["process"]["capabilities"]
    config["process"]["noNewPrivileges"] = False
    tr = _translate(config, bundle_dir)
    source, caps = nodepolicy.apply(tr, {"seccomp": {"type": "RuntimeDefault"}})
    assert source == ("profile", "default") and len(caps) == 14  # Docker's default set
    assert not tr.spec.process.no_new_privileges
    tr = _translate(config, bundle_dir)
    source, caps = nodepolicy.apply(tr, {"capabilities": {"drop": ["ALL"]}, "noNewPrivileges": True,
                                         "readOnlyRootFilesystem": True, "resources": {"pids": 64}})
    assert source is None and caps == [] and tr.spec.process.capabilities.bounding == []
    assert tr.spec.process.no_new_privileges and tr.spec.resources.pids == 64


def test_node_policy_file_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(nodepolicy.ENV, raising=False)
    monkeypatch.setattr(nodepolicy, "DEFAULT_FILE", str(tmp_path / "absent.yaml"))
    assert nodepolicy.policy_file(None) == str(nodepolicy.BUILTIN)
    (tmp_path / "absent.yaml").write_text("")
    assert nodepolicy.policy_file(None) == str(tmp_path / "absent.yaml")
    monkeypatch.setenv(nodepolicy.ENV, "/env/policy.yaml")
    assert nodepolicy.policy_file(None) == "/env/policy.yaml"
    assert nodepolicy.policy_file("/flag/policy.yaml") == "/flag/policy.yaml"


def test_readme_node_policy_admits_the_engines_plumbing_and_refuses_privileged(
        runc_config: dict[str, Any], bundle_dir: Path, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("# /etc/stockade/runtime-policy.yaml")
    policy = tmp_path / "node.yaml"
    policy.write_text(readme[start:readme.index("```", start)])
    podman_like = copy.deepcopy(runc_config)
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
            "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"]
    podman_like["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    podman_like["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "write", "exit"], "action": "SCMP_ACT_ALLOW"}]}
    podman_like["mounts"].append({"destination": "/etc/hosts", "type": "bind", "options": ["bind"],
                                  "source": "/var/lib/containers/storage/overlay-containers/c1/userdata/hosts"})
    outcome, cached = nodepolicy.evaluate(nodepolicy.document(_translate(podman_like, bundle_dir), "c1"),
                                          str(policy), tmp_path / "cache")
    assert not cached and outcome.policy == "node"
    privileged = copy.deepcopy(podman_like)
    privileged["annotations"] = {"io.podman.annotations.privileged": "TRUE"}
    with pytest.raises(nodepolicy.NodePolicyRefusal, match=r"\[runtime.privileged\]"):
        nodepolicy.evaluate(nodepolicy.document(_translate(privileged, bundle_dir), "c1"), str(policy),
                            tmp_path / "cache")
