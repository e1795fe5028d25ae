"""A compliant fixture machine for the audit's hermetic tests.

``World`` lays out a host tree (``/etc``, ``/proc``, ``/sys``, ``/var/lib/stockade`` …) under a
temporary directory, a fake ``auditctl``, a hardened ``config.toml``, one well-built image and one
well-run container. Every check passes against it as built; each check's failing fixture is a small
mutation of it (``fixtures.py``). Ownership comes from an overlay, so no test needs root to say
"this file belongs to uid 1000".
"""

from __future__ import annotations

import copy
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from engine.config import ConfigError, Paths, load_config
from hardening.audit.hostview import CommandResult, HostView
from hardening.audit.targets import (DocumentImage, SignatureVerdict, StaticContainers,
                                     StaticImages)
from hardening.audit.view import AuditView

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
IMAGE_ID = "sha256:" + "a" * 64
PYTHON = "/usr/bin/python3"
PACKAGE = "/usr/lib/stockade/engine"

CONFIG: dict[str, dict[str, Any]] = {
    "policy": {"default": "restricted", "verify_signatures": True},
    "registries": {"insecure": ["127.0.0.1:5000"], "certs_dirs": ["/etc/stockade/certs.d"]},
    "containers": {"userns": "auto", "seccomp_profile": "default", "no_new_privileges": True},
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def render_toml(config: dict[str, dict[str, Any]]) -> str:
    return "".join(f"[{section}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in table.items())
                   + "\n" for section, table in config.items())

MOUNTS = {
    "/": ("ext4", "/dev/vda1"),
    "/proc": ("proc", "proc"),
    "/sys/fs/cgroup": ("cgroup2", "cgroup2"),
    "/run": ("tmpfs", "tmpfs"),
    "/var/lib/stockade": ("ext4", "/dev/vdb1"),
    "/var/log/audit": ("ext4", "/dev/vdc1"),
}

SYSCTLS = {
    "user/max_user_namespaces": "15000", "kernel/kptr_restrict": "1", "kernel/dmesg_restrict": "1",
    "kernel/yama/ptrace_scope": "1", "fs/protected_symlinks": "1", "fs/protected_hardlinks": "1",
    "kernel/randomize_va_space": "2", "kernel/unprivileged_bpf_disabled": "2",
    "fs/suid_dumpable": "0", "fs/protected_fifos": "1", "fs/protected_regular": "2",
    "kernel/sysrq": "0", "kernel/perf_event_paranoid": "2", "kernel/hostname": "fixture",
    "kernel/seccomp/actions_avail": "kill_process kill_thread trap errno user_notif trace log allow",
}

WATCHED = ["/var/lib/stockade", "/run/stockade", "/etc/stockade", PYTHON, "/usr/bin/newuidmap",
           "/usr/bin/newgidmap", "/etc/subuid", "/etc/subgid"]


class FakeAuditctl:
    """Answers ``auditctl -l`` from a list of rules, as the real one prints them."""

    def __init__(self, rules: list[str]) -> None:
        self.rules = rules
        self.installed = True
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        if not self.installed:
            raise FileNotFoundError(argv[0])
        assert list(argv) == ["auditctl", "-l"], argv
        return CommandResult(0, "\n".join(self.rules) + "\n" if self.rules else "No rules\n", "")


@dataclass
class FakeVerifier:
    """Stands in for trust/policies: a fixed verdict per image."""

    verified: bool = True
    detail: str = "signed by key ci-release (fixture)"

    def verify(self, image: Any) -> SignatureVerdict:
        return SignatureVerdict(self.verified, self.detail)


def image_doc() -> dict[str, Any]:
    """A well-built image: non-root, health check, provenance labels, clean layers and history."""
    return {
        "id": IMAGE_ID, "digest": "sha256:" + "b" * 64, "tags": ["registry.example/app:1.2.3"],
        "config": {
            "created": (NOW - timedelta(days=10)).isoformat().replace("+00:00", "Z"),
            "config": {
                "User": "10001",
                "Healthcheck": {"Test": ["CMD", "/usr/bin/app", "--health"]},
                "Env": ["PATH=/usr/bin:/bin", "GPG_KEY=0123ABCD", "DB_PASSWORD_FILE=/run/secrets/db"],
                "Labels": {"org.opencontainers.image.source": "https://git.example/app",
                           "org.opencontainers.image.revision": "4f2c1e0"},
            },
            "history": [
                {"created_by": "/bin/sh -c #(nop) COPY file:3b1c in / "},
                {"created_by": "RUN /bin/sh -c apt-get update && apt-get install -y curl "
                               "&& rm -rf /var/lib/apt/lists/* # buildkit"},
                {"created_by": "USER 10001", "empty_layer": True},
            ],
        },
        "layers": [
            [{"path": "/etc/passwd", "mode": 0o644,
              "content": "root:x:0:0:root:/root:/bin/sh\napp:x:10001:10001::/app:/bin/sh\n"},
             {"path": "/etc/shadow", "mode": 0o640, "content": "root:*:19000:0:99999:7:::\napp:!:19000::::::\n"},
             {"path": "/tmp", "mode": 0o1777, "kind": "dir"},
             {"path": "/usr/bin/app", "mode": 0o755, "size": 1024},
             {"path": "/etc/ssl/certs/ca.key", "mode": 0o644, "size": 10}],
            [{"path": "/var/lib/apt/lists/lock", "mode": 0o640, "size": 0}],
        ],
    }


def container_doc() -> dict[str, Any]:
    """A well-run container: non-root, read-only, limits, dropped capabilities, no host sharing."""
    return {
        "Id": "c" * 64, "Name": "/web", "Image": IMAGE_ID,
        "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0,
                  "OOMKilled": False, "StartedAt": "2026-05-31T10:00:00Z",
                  "FinishedAt": "0001-01-01T00:00:00Z", "Health": {"Status": "healthy"}},
        "Config": {"User": "10001", "Image": "registry.example/app:1.2.3"},
        "HostConfig": {
            "Privileged": False, "ReadonlyRootfs": True, "CapAdd": ["NET_BIND_SERVICE"],
            "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges:true", "seccomp=default.json"],
            "Memory": 512 * 1024 * 1024, "NanoCpus": 1_000_000_000, "PidsLimit": 256,
            "NetworkMode": "bridge", "PidMode": "", "IpcMode": "private", "UTSMode": "",
            "UsernsMode": "", "Devices": [], "CgroupParent": "",
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
        },
        "Mounts": [{"Type": "bind", "Source": "/srv/app-data", "Destination": "/data", "RW": True,
                    "Propagation": "rprivate"}],
    }


@dataclass
class World:
    """A fixture machine; mutate its parts, then call ``view()``."""

    base: Path
    root: Path = field(init=False)
    owners: dict[str, tuple[int, int]] = field(default_factory=dict)
    mounts: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(MOUNTS))
    auditctl: FakeAuditctl = field(default_factory=lambda: FakeAuditctl(
        [f"-w {p} -p wa -k stockade" for p in WATCHED]))
    config: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(CONFIG))
    config_text: str | None = None  # raw text instead of ``config`` (for invalid files)
    rootless: bool = False
    images: list[dict[str, Any]] = field(default_factory=lambda: [image_doc()])
    containers: list[dict[str, Any]] = field(default_factory=lambda: [container_doc()])
    verifier: FakeVerifier | None = field(default_factory=FakeVerifier)

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.build()

    # -- tree helpers -----------------------------------------------------------------------
    def real(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def write(self, path: str, text: str = "", mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
        real = self.real(path)
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(text)
        os.chmod(real, mode)
        self.owners[path] = owner

    def mkdir(self, path: str, mode: int = 0o755, owner: tuple[int, int] = (0, 0)) -> None:
        real = self.real(path)
        real.mkdir(parents=True, exist_ok=True)
        os.chmod(real, mode)
        self.owners[path] = owner

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self.real(path), mode)

    def socket(self, path: str, mode: int) -> None:
        real = self.real(path)
        os.mknod(real, stat.S_IFSOCK | mode)
        os.chmod(real, mode)
        self.owners[path] = (0, 0)

    def sysctl(self, name: str, value: str | None) -> None:
        real = self.real("/proc/sys/" + name)
        if value is None:
            real.unlink()
        else:
            self.write("/proc/sys/" + name, value + "\n")

    def build(self) -> None:
        for name, value in SYSCTLS.items():
            self.write("/proc/sys/" + name, value + "\n")
        self.write("/proc/self/status", "Name:\tpython3\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n")
        self.write("/proc/filesystems", "nodev\tproc\nnodev\toverlay\n\text4\nnodev\ttmpfs\n")
        self.write("/proc/4242/stat", "4242 (app) S 1 4242 4242 0 -1\n")
        self.write("/proc/4242/comm", "app\n")
        self.write("/proc/4243/stat", "4243 (worker thread) S 4242 4242 4242 0 -1\n")
        self.write("/proc/4243/comm", "worker\n")
        self.write("/sys/kernel/security/lsm", "lockdown,capability,yama,apparmor\n")
        self.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n")
        self.write("/etc/group", "root:x:0:\nalice:x:1000:\nstockade:x:990:\n")
        self.write("/etc/subuid", "alice:100000:65536\n")
        self.write("/etc/subgid", "alice:100000:65536\n")
        self.mkdir("/etc/stockade", 0o755)
        self.mkdir("/etc/stockade/certs.d/registry.example", 0o755)
        self.write("/etc/stockade/certs.d/registry.example/ca.crt", "-----BEGIN CERTIFICATE-----\n", 0o444)
        self.write("/etc/stockade/certs.d/registry.example/client.cert", "-----BEGIN CERTIFICATE-----\n", 0o444)
        self.write("/etc/stockade/certs.d/registry.example/client.key", "-----BEGIN PRIVATE KEY-----\n", 0o400)
        self.write("/etc/stockade/auth.json", '{"auths": {}}\n', 0o600)
        self.mkdir("/etc/stockade/keys", 0o700)
        self.write("/etc/stockade/keys/cosign.key", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n", 0o600)
        self.mkdir("/etc/stockade/policies", 0o755)
        self.write("/etc/stockade/policies/default.yaml", "profile: restricted\n", 0o644)
        self.mkdir("/etc/stockade/seccomp", 0o755)
        self.write("/etc/stockade/seccomp/app.json", '{"defaultAction": "SCMP_ACT_ERRNO"}\n', 0o644)
        self.write("/root/.docker/config.json", '{"auths": {}}\n', 0o600)
        self.mkdir("/var/lib/stockade", 0o700)
        self.mkdir("/var/lib/stockade/blobs", 0o700)
        self.mkdir("/var/lib/stockade/containers", 0o700)
        self.mkdir("/var/lib/stockade/containers/" + "c" * 64, 0o700)
        self.mkdir("/run/stockade", 0o700)
        self.socket("/run/stockade/attach.sock", 0o660)
        self.mkdir("/var/cache/stockade", 0o700)
        self.write("/usr/bin/newuidmap", "ELF", 0o4755)
        self.write("/usr/bin/newgidmap", "ELF", 0o4755)
        self.write(PYTHON, "ELF", 0o755)
        self.mkdir(PACKAGE, 0o755)
        self.write(PACKAGE + "/__init__.py", "", 0o644)
        self.write("/etc/systemd/system/stockade.service", "[Service]\n", 0o644)
        self.write("/etc/audit/rules.d/stockade.rules",
                   "".join(f"-w {p} -p wa -k stockade\n" for p in WATCHED), 0o640)
        self.write("/etc/stockade/config.toml", render_toml(self.config), 0o644)

    def mountinfo(self) -> str:
        lines = []
        for i, (point, (fstype, source)) in enumerate(self.mounts.items(), start=20):
            lines.append(f"{i} 1 0:{i} / {point.replace(' ', chr(92) + '040')} rw,relatime - "
                         f"{fstype} {source} rw")
        return "\n".join(lines) + "\n"

    def paths(self) -> Paths:
        if self.rootless:
            return Paths(root=Path("/home/alice/.local/share/stockade"),
                         runroot=Path("/run/user/1000/stockade"),
                         config_dir=Path("/home/alice/.config/stockade"),
                         cache=Path("/home/alice/.cache/stockade"), rootless=True)
        return Paths(root=Path("/var/lib/stockade"), runroot=Path("/run/stockade"),
                     config_dir=Path("/etc/stockade"), cache=Path("/var/cache/stockade"),
                     rootless=False)

    def view(self) -> AuditView:
        self.write("/proc/self/mountinfo", self.mountinfo())
        config_file = self.real("/etc/stockade/config.toml")
        config_file.write_text(self.config_text if self.config_text is not None
                               else render_toml(self.config))
        config, error = None, None
        try:
            config = load_config(config_file)
        except ConfigError as exc:
            error = str(exc)
        return AuditView(
            host=HostView(self.root, owners=self.owners, live=True), runner=self.auditctl,
            paths=self.paths(), config=config, config_error=error,
            images=StaticImages([DocumentImage.from_document(d) for d in self.images]),
            containers=StaticContainers(list(self.containers)), signatures=self.verifier,
            binaries=(PYTHON, PACKAGE), owner_uid=1000 if self.rootless else 0, now=NOW)
