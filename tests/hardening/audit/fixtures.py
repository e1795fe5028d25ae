"""Each check's passing and failing fixture, as changes to the compliant ``World``.

``FIXTURES[check_id]`` holds ``fail`` (a mutation after which the check must FAIL) and optionally
``make_pass`` (a set-up after which it must PASS, for checks the default world does not cover, such
as rootless ones). A check missing here fails the registry-wide test: a new check needs fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from tests.hardening.audit.world import NOW, PYTHON, World, container_doc, image_doc

Mutation = Callable[[World], None]


@dataclass(frozen=True)
class Fixture:
    fail: Mutation
    make_pass: Mutation | None = None


def _noop(_w: World) -> None:
    """The compliant world as built."""


def sysctl(name: str, value: str | None) -> Mutation:
    return lambda w: w.sysctl(name, value)


def chmod(path: str, mode: int) -> Mutation:
    return lambda w: w.chmod(path, mode)


def config(section: str, key: str, value: Any) -> Mutation:
    return lambda w: w.config.setdefault(section, {}).__setitem__(key, value)


def unmount(point: str) -> Mutation:
    return lambda w: w.mounts.pop(point)


def mount(point: str, fstype: str) -> Mutation:
    return lambda w: w.mounts.__setitem__(point, (fstype, fstype))


def unwatch(*paths: str) -> Mutation:
    def apply(w: World) -> None:
        w.auditctl.rules = [r for r in w.auditctl.rules if r.split()[1] not in paths]
    return apply


def image(**changes: Any) -> Mutation:
    """Change the image's config section (``config.config``) or top-level keys."""
    def apply(w: World) -> None:
        doc = w.images[0]
        for key, value in changes.items():
            if key in ("tags", "created", "history", "add_layer"):
                if key == "created":
                    doc["config"]["created"] = value
                elif key == "history":
                    doc["config"]["history"].append({"created_by": value})
                elif key == "add_layer":
                    doc["layers"].append(value)
                else:
                    doc[key] = value
            elif value is None:
                doc["config"]["config"].pop(key, None)
            else:
                doc["config"]["config"][key] = value
    return apply


def layer_file(path: str, mode: int = 0o644, kind: str = "file", content: str | None = None) -> Mutation:
    entry: dict[str, Any] = {"path": path, "mode": mode, "kind": kind}
    if content is not None:
        entry["content"] = content
    return image(add_layer=[entry])


def host_config(**changes: Any) -> Mutation:
    def apply(w: World) -> None:
        w.containers[0]["HostConfig"].update(changes)
    return apply


def ctr_mount(source: str, rw: bool = True, propagation: str = "rprivate") -> Mutation:
    def apply(w: World) -> None:
        w.containers[0]["Mounts"].append({"Type": "bind", "Source": source, "Destination": "/host",
                                          "RW": rw, "Propagation": propagation})
    return apply


def _rootless(w: World) -> None:
    w.rootless = True


def _rootless_short_range(w: World) -> None:
    w.rootless = True
    w.write("/etc/subuid", "alice:100000:1000\n")


def _group_member(w: World) -> None:
    w.owners["/var/lib/stockade"] = (0, 990)
    w.write("/etc/group", "root:x:0:\nalice:x:1000:\nstockade:x:990:alice\n")


def _no_rules(w: World) -> None:
    w.auditctl.rules = []


def _stale_rule(w: World) -> None:
    w.write("/etc/audit/rules.d/90-extra.rules", "-w /etc/stockade/policies -p wa -k stockade\n", 0o640)


def _overlap(w: World) -> None:
    w.write("/etc/subuid", "alice:100000:65536\nbob:150000:65536\n")


def _no_lsm(w: World) -> None:
    w.write("/sys/kernel/security/lsm", "lockdown,capability,yama\n")


def _no_overlay(w: World) -> None:
    w.write("/proc/filesystems", "nodev\tproc\n\text4\n")


def _invalid_config(w: World) -> None:
    w.config_text = "[policy]\nverify = true\n"


def _shadow_empty(w: World) -> None:
    w.images[0]["layers"].append([{"path": "/etc/shadow", "mode": 0o640,
                                   "content": "root:*:19000:0:99999:7:::\napp::19000::::::\n"}])


def _unsigned(w: World) -> None:
    assert w.verifier is not None
    w.verifier.verified = False
    w.verifier.detail = "no signature from a key the policy names"


def _sshd(w: World) -> None:
    w.write("/proc/4244/stat", "4244 (sshd) S 4243 4242 4242 0 -1\n")
    w.write("/proc/4244/comm", "sshd\n")


def _unused_images(w: World) -> None:
    for n in ("c", "d"):
        doc = image_doc()
        doc.update(id="sha256:" + n * 64, digest=None, tags=[f"registry.example/old-{n}:1"])
        w.images.append(doc)


def _stopped_long_ago(w: World) -> None:
    doc = container_doc()
    doc.update(Id="d" * 64, Name="/old-job")
    doc["State"].update(Status="exited", Running=False, Pid=0,
                        FinishedAt=(NOW - timedelta(days=90)).isoformat().replace("+00:00", "Z"))
    w.containers.append(doc)


def _root_user(w: World) -> None:
    w.containers[0]["Config"]["User"] = ""


FIXTURES: dict[str, Fixture] = {
    # host
    "HOST-001": Fixture(unmount("/var/lib/stockade")),
    "HOST-002": Fixture(unmount("/var/log/audit")),
    "HOST-003": Fixture(_group_member),
    "HOST-004": Fixture(_no_rules),
    "HOST-005": Fixture(unwatch(PYTHON)),
    "HOST-006": Fixture(unwatch("/usr/bin/newuidmap")),
    "HOST-007": Fixture(unwatch("/etc/stockade")),
    "HOST-008": Fixture(unwatch("/etc/stockade")),
    "HOST-009": Fixture(unwatch("/run/stockade")),
    "HOST-010": Fixture(unwatch("/var/lib/stockade")),
    "HOST-011": Fixture(_stale_rule),
    "HOST-012": Fixture(unwatch("/etc/subgid")),
    "HOST-013": Fixture(sysctl("kernel/seccomp/actions_avail", None)),
    "HOST-014": Fixture(_no_lsm),
    "HOST-015": Fixture(mount("/sys/fs/cgroup/memory", "cgroup")),
    "HOST-016": Fixture(sysctl("user/max_user_namespaces", "0")),
    "HOST-017": Fixture(sysctl("kernel/kptr_restrict", "0")),
    "HOST-018": Fixture(sysctl("kernel/dmesg_restrict", "0")),
    "HOST-019": Fixture(sysctl("kernel/yama/ptrace_scope", None)),
    "HOST-020": Fixture(sysctl("fs/protected_symlinks", "0")),
    "HOST-021": Fixture(sysctl("fs/protected_hardlinks", "0")),
    "HOST-022": Fixture(sysctl("kernel/randomize_va_space", "1")),
    "HOST-023": Fixture(sysctl("kernel/unprivileged_bpf_disabled", "0")),
    "HOST-024": Fixture(sysctl("fs/suid_dumpable", "2")),
    "HOST-025": Fixture(sysctl("fs/protected_fifos", "0")),
    "HOST-026": Fixture(sysctl("fs/protected_regular", "0")),
    "HOST-027": Fixture(sysctl("kernel/sysrq", "176")),
    "HOST-028": Fixture(sysctl("kernel/perf_event_paranoid", "1")),
    "HOST-029": Fixture(_overlap),
    # engine
    "ENG-001": Fixture(_noop, make_pass=_rootless),
    "ENG-002": Fixture(config("policy", "default", "privileged")),
    "ENG-003": Fixture(config("policy", "verify_signatures", False)),
    "ENG-004": Fixture(config("registries", "insecure", ["127.0.0.1:5000", "registry.example:5000"])),
    "ENG-005": Fixture(_no_overlay),
    "ENG-006": Fixture(config("containers", "userns", "host")),
    "ENG-007": Fixture(config("containers", "seccomp_profile", "unconfined")),
    "ENG-008": Fixture(config("containers", "no_new_privileges", False)),
    "ENG-009": Fixture(config("containers", "log_max_size", "0")),
    "ENG-010": Fixture(config("unpack", "max_entries", 50_000_000)),
    "ENG-011": Fixture(config("unpack", "max_manifest_size", "1GiB")),
    "ENG-012": Fixture(_invalid_config),
    "ENG-013": Fixture(config("registries", "certs_dirs", ["/etc/stockade/cert.d"])),
    "ENG-014": Fixture(config("registries", "timeout", 0)),
    "ENG-015": Fixture(mount("/var/lib/stockade", "tmpfs")),
    "ENG-016": Fixture(_rootless_short_range, make_pass=_rootless),
    "ENG-017": Fixture(unmount("/run")),
    # files
    "FILE-001": Fixture(chmod("/etc/stockade/config.toml", 0o664)),
    "FILE-002": Fixture(chmod("/etc/stockade", 0o775)),
    "FILE-003": Fixture(chmod("/run/stockade", 0o777)),
    "FILE-004": Fixture(chmod("/var/lib/stockade", 0o757)),
    "FILE-005": Fixture(chmod("/var/lib/stockade/blobs", 0o777)),
    "FILE-006": Fixture(chmod("/run/stockade/attach.sock", 0o666)),
    "FILE-007": Fixture(chmod("/etc/stockade/certs.d/registry.example/ca.crt", 0o644)),
    "FILE-008": Fixture(chmod("/etc/stockade/certs.d/registry.example/client.cert", 0o664)),
    "FILE-009": Fixture(chmod("/etc/stockade/certs.d/registry.example/client.key", 0o440)),
    "FILE-010": Fixture(chmod("/root/.docker/config.json", 0o644)),
    "FILE-011": Fixture(chmod("/etc/stockade/keys/cosign.key", 0o640)),
    "FILE-012": Fixture(chmod("/etc/stockade/policies/default.yaml", 0o666)),
    "FILE-013": Fixture(chmod("/etc/stockade/seccomp/app.json", 0o646)),
    "FILE-014": Fixture(chmod(PYTHON, 0o775)),
    "FILE-015": Fixture(chmod("/usr/bin/newuidmap", 0o4777)),
    "FILE-016": Fixture(chmod("/etc/subuid", 0o666)),
    "FILE-017": Fixture(chmod("/var/cache/stockade", 0o777)),
    "FILE-018": Fixture(chmod("/var/lib/stockade/containers/" + "c" * 64, 0o755)),
    "FILE-019": Fixture(chmod("/etc/systemd/system/stockade.service", 0o664)),
    "FILE-020": Fixture(chmod("/etc/audit/rules.d/stockade.rules", 0o644)),
    # images
    "IMG-001": Fixture(image(User=None)),
    "IMG-002": Fixture(image(Healthcheck={"Test": ["NONE"]})),
    "IMG-003": Fixture(layer_file("/usr/bin/su", 0o4755)),
    "IMG-004": Fixture(image(Env=["PATH=/usr/bin", "DB_PASSWORD=hunter2"])),
    "IMG-005": Fixture(layer_file("/root/.ssh/id_rsa", 0o600)),
    "IMG-006": Fixture(image(history="/bin/sh -c #(nop) ADD file:9a1c in /app ")),
    "IMG-007": Fixture(image(history="ADD https://example.org/tool.tar.gz /tmp/ # buildkit")),
    "IMG-008": Fixture(image(tags=["registry.example/app:latest", "registry.example/app"])),
    "IMG-009": Fixture(_unsigned),
    "IMG-010": Fixture(image(Labels={"maintainer": "team@example.org"})),
    "IMG-011": Fixture(_shadow_empty),
    "IMG-012": Fixture(layer_file("/usr/bin/sudo", 0o4755)),
    "IMG-013": Fixture(layer_file("/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease")),
    "IMG-014": Fixture(layer_file("/shared", 0o777, "dir")),
    "IMG-015": Fixture(image(history="RUN /bin/sh -c apt-get update # buildkit")),
    "IMG-016": Fixture(image(Labels={"org.opencontainers.image.source": "x",
                                     "org.opencontainers.image.revision": "y", "api_token": "abc"})),
    "IMG-017": Fixture(image(history="RUN |1 NPM_TOKEN=abc123 /bin/sh -c npm ci # buildkit")),
    "IMG-018": Fixture(layer_file("/usr/sbin/sshd", 0o755)),
    "IMG-019": Fixture(image(created="2024-01-01T00:00:00.123456789Z")),
    "IMG-020": Fixture(layer_file("/app/.git/config")),
    # containers
    "CTR-001": Fixture(host_config(Privileged=True)),
    "CTR-002": Fixture(host_config(CapAdd=["NET_BIND_SERVICE", "SYS_TIME"])),
    "CTR-003": Fixture(host_config(CapAdd=["CAP_SYS_ADMIN"])),
    "CTR-004": Fixture(ctr_mount("/var/lib/stockade", rw=False)),
    "CTR-005": Fixture(ctr_mount("/etc", rw=False)),
    "CTR-006": Fixture(ctr_mount("/usr", rw=True)),
    "CTR-007": Fixture(host_config(NetworkMode="host")),
    "CTR-008": Fixture(host_config(PidMode="host")),
    "CTR-009": Fixture(host_config(IpcMode="host")),
    "CTR-010": Fixture(host_config(UTSMode="host")),
    "CTR-011": Fixture(host_config(UsernsMode="host")),
    "CTR-012": Fixture(host_config(SecurityOpt=["no-new-privileges:true", "seccomp:unconfined"])),
    "CTR-013": Fixture(host_config(SecurityOpt=["no-new-privileges=false"])),
    "CTR-014": Fixture(host_config(SecurityOpt=["no-new-privileges", "apparmor=unconfined"])),
    "CTR-015": Fixture(host_config(ReadonlyRootfs=False)),
    "CTR-016": Fixture(host_config(Memory=0)),
    "CTR-017": Fixture(host_config(NanoCpus=0)),
    "CTR-018": Fixture(host_config(PidsLimit=-1)),
    "CTR-019": Fixture(host_config(Devices=[{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda",
                                             "CgroupPermissions": "rwm"}])),
    "CTR-020": Fixture(ctr_mount("/srv/shared", propagation="rshared")),
    "CTR-021": Fixture(host_config(RestartPolicy={"Name": "always", "MaximumRetryCount": 0})),
    "CTR-022": Fixture(lambda w: w.containers[0]["State"].__setitem__("Health", {"Status": "unhealthy"})),
    "CTR-023": Fixture(_sshd),
    "CTR-024": Fixture(_root_user),
    "CTR-025": Fixture(host_config(PortBindings={"443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "443"}]})),
    "CTR-026": Fixture(host_config(PortBindings={"8080/tcp": [{"HostIp": "", "HostPort": "8080"}]})),
    "CTR-027": Fixture(host_config(CgroupParent="/custom.slice")),
    "CTR-028": Fixture(host_config(CapDrop=["NET_RAW"])),
    # operations
    "OPS-001": Fixture(_unused_images),
    "OPS-002": Fixture(_stopped_long_ago),
}

