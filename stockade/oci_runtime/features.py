"""``features``, ``spec`` and ``--version``: what this runtime implements, and a bundle to start from.

The features document (OCI runtime spec, ``features.md``) states what the runtime *recognises*,
independent of the host: every namespace and capability of the spec, the seccomp actions, operators
and architectures ``hardening.seccomp`` compiles (``SCMP_ACT_NOTIFY`` is not one: there is no listener
support), the mount options ``engine.runtime.rootfs`` understands, cgroup v1 and v2 through cgroupfs
(``systemd`` is false: ``--systemd-cgroup`` maps systemd's cgroup paths onto cgroupfs without a systemd),
and no AppArmor, SELinux or Intel RDT.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from engine.runtime.capabilities import NAMES
from stockade import __version__
from engine.spec import NAMESPACES
from stockade.oci_runtime.bundle import HOOK_STAGES
from stockade.oci_runtime.state import OCI_VERSION

MOUNT_OPTIONS = ("bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime",
                 "relatime", "strictatime", "nodiratime", "private", "rprivate", "slave", "rslave", "shared",
                 "rshared")
SECCOMP_ACTIONS = ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                   "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP")
SECCOMP_OPERATORS = ("SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                     "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE")
SECCOMP_ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")


def features() -> dict[str, Any]:
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_STAGES),
        "mountOptions": sorted(MOUNT_OPTIONS),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": list(NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {"enabled": True, "actions": list(SECCOMP_ACTIONS), "operators": list(SECCOMP_OPERATORS),
                        "archs": list(SECCOMP_ARCHES), "knownFlags": [], "supportedFlags": []},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
        },
        "annotations": {"org.stockade.runtime.version": __version__,
                        "org.stockade.runtime.node-policy": "policies (stockade.dev/v1)"},
    }


def print_features() -> None:
    sys.stdout.write(json.dumps(features(), indent=2) + "\n")


def default_config() -> dict[str, Any]:
    """The ``spec`` verb's bundle: a shell in every namespace but the user's, hardened as Stockade's
    defaults are (no capabilities but three, no_new_privs, a read-only root, runc's masked paths)."""
    from hardening.defaults import MASKED_PATHS, READONLY_PATHS

    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/", "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "stockade",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                   {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                    "options": ["nosuid", "noexec", "nodev", "ro"]}],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(MASKED_PATHS), "readonlyPaths": list(READONLY_PATHS),
        },
    }


def write_spec(bundle: str) -> None:
    from engine.errors import StockadeError

    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise StockadeError(f"File {path} exists. Remove it first")
    with open(path, "x") as f:
        json.dump(default_config(), f, indent=2)
        f.write("\n")
