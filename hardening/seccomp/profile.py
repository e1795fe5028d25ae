"""Seccomp profiles: read Docker's format or OCI's ``linux.seccomp``, expand for one container.

Docker's format (the vendored ``default.json``) is a superset of OCI's: an ``archMap`` instead of a
fixed ``architectures`` list, and ``includes``/``excludes`` conditions on capabilities, architectures
and the kernel version. Expansion resolves those conditions for one container, exactly as Docker does
it when it builds a container's OCI spec:

* the architectures are the host's entry in ``archMap`` plus its sub-architectures;
* an entry is dropped when ``excludes`` matches (the host's Go architecture name is listed, any listed
  capability is in the container's set, or the kernel is at least ``minKernel``) or when ``includes``
  fails (the host is not listed, a listed capability is missing, the kernel is older than
  ``minKernel``).

The result is a plain OCI ``linux.seccomp`` document: what ``inspect`` shows, what the policy reads,
and what ``compile`` turns into BPF. Profiles come from users: everything is checked, and a mistake is
one line naming the file and the entry.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from engine.boundedio import load_json
from engine.errors import StockadeError

DEFAULT_PROFILE = Path(__file__).with_name("default.json")
MAX_PROFILE = 1024 * 1024

ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
           "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
             "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
# The host as seccomp and as Docker's profile (Go's GOARCH) name it.
HOST_ARCHES = {"x86_64": ("SCMP_ARCH_X86_64", "amd64"), "aarch64": ("SCMP_ARCH_AARCH64", "arm64")}


class ProfileError(StockadeError):
    """A seccomp profile is unreadable or invalid."""

    exit_code = 125


def host_arch() -> tuple[str, str]:
    """(SCMP_ARCH_* token, Go architecture name) of this machine."""
    machine = os.uname().machine
    if machine not in HOST_ARCHES:
        raise ProfileError(f"seccomp profiles are not supported on {machine}")
    return HOST_ARCHES[machine]


def kernel_version(release: str | None = None) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release or os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def load(path: str | Path) -> tuple[bytes, dict[str, Any]]:
    """Read a profile file: its exact bytes (for the cache key) and the parsed document."""
    raw, doc = load_json(path, MAX_PROFILE, what=f"seccomp profile {path}", error=ProfileError)
    validate(doc, str(path))
    return raw, doc


def _fail(where: str, message: str) -> ProfileError:
    return ProfileError(f"seccomp profile {where}: {message}")


def _strings(value: Any, where: str, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"{what} must be a list of strings")
    return value


def validate(doc: Any, where: str) -> None:
    """Check the shape of a Docker or OCI profile; raise ProfileError naming the bad part."""
    if not isinstance(doc, dict):
        raise _fail(where, "the document must be a JSON object")
    if doc.get("defaultAction") not in ACTIONS:
        raise _fail(where, f"defaultAction must be one of {', '.join(ACTIONS)}")
    _strings(doc.get("architectures"), where, "architectures")
    for i, entry in enumerate(doc.get("archMap") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("architecture"), str):
            raise _fail(where, f"archMap[{i}] needs an architecture")
        _strings(entry.get("subArchitectures"), where, f"archMap[{i}].subArchitectures")
    syscalls = doc.get("syscalls")
    syscalls = [] if syscalls is None else syscalls
    if not isinstance(syscalls, list):
        raise _fail(where, "syscalls must be a list")
    for i, rule in enumerate(syscalls):
        at = f"syscalls[{i}]"
        if not isinstance(rule, dict):
            raise _fail(where, f"{at} must be an object")
        names = rule.get("names") or ([rule["name"]] if isinstance(rule.get("name"), str) else None)
        if not names:
            raise _fail(where, f"{at} names no syscall")
        _strings(names, where, f"{at}.names")
        if rule.get("action") not in ACTIONS:
            raise _fail(where, f"{at}.action must be one of {', '.join(ACTIONS)}")
        errno_ret = rule.get("errnoRet")
        if errno_ret is not None and (not isinstance(errno_ret, int) or not 0 <= errno_ret < 4096):
            raise _fail(where, f"{at}.errnoRet must be an errno number")
        for j, arg in enumerate(rule.get("args") or []):
            if (not isinstance(arg, dict) or not isinstance(arg.get("index"), int)
                    or not 0 <= arg["index"] <= 5 or arg.get("op") not in OPERATORS
                    or not isinstance(arg.get("value"), int)
                    or not isinstance(arg.get("valueTwo", 0), int)):
                raise _fail(where, f"{at}.args[{j}] needs index 0-5, an op and integer values")
        for key in ("includes", "excludes"):
            cond = rule.get(key) or {}
            if not isinstance(cond, dict):
                raise _fail(where, f"{at}.{key} must be an object")
            _strings(cond.get("caps"), where, f"{at}.{key}.caps")
            _strings(cond.get("arches"), where, f"{at}.{key}.arches")
            if "minKernel" in cond and not re.match(r"^\d+\.\d+", str(cond["minKernel"])):
                raise _fail(where, f"{at}.{key}.minKernel must look like 4.8")


def _applies(rule: dict[str, Any], caps: set[str], go_arch: str, kernel: tuple[int, int]) -> bool:
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if exc.get("arches") and go_arch in exc["arches"]:
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    if exc.get("minKernel") and kernel >= kernel_version(exc["minKernel"]):
        return False
    if inc.get("arches") and go_arch not in inc["arches"]:
        return False
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("minKernel") and kernel < kernel_version(inc["minKernel"]):
        return False
    return True


def expand(doc: dict[str, Any], caps: list[str], *, arch: tuple[str, str] | None = None,
           kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` document for a container with capability set ``caps``."""
    token, go_arch = arch or host_arch()
    kern = kernel or kernel_version()
    if doc.get("architectures"):
        arches = list(doc["architectures"])
    else:
        arches = [token]
        for entry in doc.get("archMap") or []:
            if entry["architecture"] == token:
                arches += list(entry.get("subArchitectures") or [])
    cap_set = set(caps)
    rules = []
    for rule in doc.get("syscalls") or []:
        if not _applies(rule, cap_set, go_arch, kern):
            continue
        out: dict[str, Any] = {"names": list(rule.get("names") or [rule["name"]]),
                               "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            out["args"] = [{"index": a["index"], "value": a["value"], "valueTwo": a.get("valueTwo", 0),
                            "op": a["op"]} for a in rule["args"]]
        rules.append(out)
    result: dict[str, Any] = {"defaultAction": doc["defaultAction"], "architectures": arches,
                              "syscalls": rules}
    if doc.get("defaultErrnoRet") is not None:
        result["defaultErrnoRet"] = doc["defaultErrnoRet"]
    return result
