"""Compile an OCI ``linux.seccomp`` document to a classic-BPF program with libseccomp.

As runc does it, with two choices made from measurements on this host (../shared/notes/policy.md):

* **binary-tree dispatch** (``SCMP_FLTATR_CTL_OPTIMIZE=2``): an argument-checked syscall such as
  ``personality(0xffffffff)`` misses the kernel's action cache and runs the whole filter; the tree
  brings it from ~2.2x to ~1.2x of an unfiltered call;
* **an ENOSYS stub** prepended to the program: a syscall numbered above the highest one the profile
  names (for each architecture) answers ENOSYS, not the default EPERM. Those are syscalls newer than
  libseccomp or the profile know (``mseal`` with libseccomp 2.5.4); ENOSYS makes libc fall back to an
  older call, where EPERM would make it fail.

Names libseccomp does not know are skipped (runc does the same) and reported to the caller; libseccomp
itself maps each name to its number on every architecture of the filter. The program is exported, not
loaded: the container's init loads the bytes as its last step before exec, and the bytes are cached.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any

from hardening.seccomp.profile import ProfileError

ERRNO_EPERM = 1
ENOSYS = 38
X32_SYSCALL_BIT = 0x40000000
# classic BPF opcodes (linux/filter.h) and the seccomp_data offsets of nr and arch
_LD_W_ABS, _JEQ_K, _JGT_K, _JSET_K, _RET_K = 0x20, 0x15, 0x25, 0x45, 0x06
_OFF_NR, _OFF_ARCH = 0, 4
_RET_ERRNO = 0x00050000
BPF_MAXINSNS = 4096

_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
        "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}


@dataclass
class Compiled:
    program: bytes
    unknown: list[str] = field(default_factory=list)  # names libseccomp does not know
    highest: dict[str, int] = field(default_factory=dict)  # arch token -> highest named syscall


def _action(seccomp: Any, name: str, errno_ret: int | None, default_errno: int) -> int:
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return int(seccomp.KILL_THREAD)
    if name == "SCMP_ACT_KILL_PROCESS":
        return int(seccomp.KILL_PROCESS)
    if name == "SCMP_ACT_TRAP":
        return int(seccomp.TRAP)
    if name == "SCMP_ACT_ERRNO":
        return int(seccomp.ERRNO(default_errno if errno_ret is None else errno_ret))
    if name == "SCMP_ACT_TRACE":
        return int(seccomp.TRACE(default_errno if errno_ret is None else errno_ret))
    if name == "SCMP_ACT_LOG":
        return int(seccomp.LOG)
    if name == "SCMP_ACT_ALLOW":
        return int(seccomp.ALLOW)
    raise ProfileError(f"seccomp action {name} is not supported")


def _arch_value(seccomp: Any, token: str) -> int:
    attr = token.removeprefix("SCMP_ARCH_")
    value = getattr(seccomp.Arch, attr, None)
    if value is None:
        raise ProfileError(f"seccomp architecture {token} is not supported")
    return int(value)


def _arg_groups(args: list[dict[str, Any]], seccomp: Any) -> list[list[Any]]:
    """Conditions on distinct arguments are AND-ed in one rule; a repeated index makes one rule each
    (libseccomp cannot AND two conditions on one argument), as runc does."""
    made = [seccomp.Arg(a["index"], _OPS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in args]
    indexes = [a["index"] for a in args]
    if len(set(indexes)) == len(indexes):
        return [made]
    return [[m] for m in made]


def enosys_stub(arches: list[tuple[int, int, bool]]) -> bytes:
    """BPF that returns ENOSYS for ``nr > highest`` of each (audit arch, highest, is x86_64) triple.

    Anything else (another architecture, an x32 call, a known number) falls through to the program
    appended after the stub. Jumps in classic BPF only go forward, counted from the next instruction.
    """
    sizes = [5 if is_x86_64 else 4 for _, _, is_x86_64 in arches]
    enosys = sum(sizes)
    program = enosys + 1
    insns: list[tuple[int, int, int, int]] = []
    for i, (audit, highest, is_x86_64) in enumerate(arches):
        next_block = len(insns) + sizes[i] if i + 1 < len(arches) else program
        insns.append((_LD_W_ABS, 0, 0, _OFF_ARCH))
        insns.append((_JEQ_K, 0, next_block - len(insns) - 1, audit))
        insns.append((_LD_W_ABS, 0, 0, _OFF_NR))
        if is_x86_64:
            insns.append((_JSET_K, program - len(insns) - 1, 0, X32_SYSCALL_BIT))
        here = len(insns)
        insns.append((_JGT_K, enosys - here - 1, program - here - 1, highest))
    insns.append((_RET_K, 0, 0, _RET_ERRNO | ENOSYS))
    return b"".join(struct.pack("<HBBI", *insn) for insn in insns)


def compile_profile(oci: dict[str, Any]) -> Compiled:
    """Build the filter for an expanded (OCI) profile and export it as BPF bytes."""
    import pyseccomp as seccomp  # libseccomp is needed only when the cache misses

    default_errno = oci.get("defaultErrnoRet", ERRNO_EPERM)
    default = _action(seccomp, oci["defaultAction"], default_errno, default_errno)
    filt = seccomp.SyscallFilter(default)
    # Stockade sets no_new_privs itself (or deliberately not): libseccomp must not.
    filt.set_attr(seccomp.Attr.CTL_NNP, 0)
    filt.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    native = seccomp.system_arch()
    arch_values = {}
    for token in oci.get("architectures") or []:
        value = _arch_value(seccomp, token)
        arch_values[token] = value
        if value != native and not filt.exist_arch(value):
            filt.add_arch(value)
    unknown: list[str] = []
    for rule in oci.get("syscalls") or []:
        action = _action(seccomp, rule["action"], rule.get("errnoRet"), ERRNO_EPERM)
        if action == default:
            continue  # libseccomp refuses a rule equal to the default action
        for name in rule["names"]:
            nr = seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
            if nr == -1:  # __NR_SCMP_ERROR; other negative numbers are valid pseudo-syscalls
                if name not in unknown:
                    unknown.append(name)
                continue
            for group in _arg_groups(rule.get("args") or [], seccomp):
                filt.add_rule(action, nr, *group)
    highest = _highest(seccomp, oci, arch_values)
    fd = os.memfd_create("stockade-seccomp", os.MFD_CLOEXEC)
    with os.fdopen(fd, "w+b") as f:
        filt.export_bpf(f)
        f.seek(0)
        body = f.read()
    stub_arches = [(value, highest[token], token == "SCMP_ARCH_X86_64")
                   for token, value in arch_values.items()
                   if token != "SCMP_ARCH_X32" and token in highest]
    program = body
    if stub_arches and oci["defaultAction"] != "SCMP_ACT_ALLOW" and default_errno != ENOSYS:
        program = enosys_stub(stub_arches) + body
    if len(program) // 8 > BPF_MAXINSNS:
        raise ProfileError(f"the seccomp filter is too large ({len(program) // 8} instructions)")
    return Compiled(program=program, unknown=sorted(unknown), highest=highest)


def _highest(seccomp: Any, oci: dict[str, Any], arch_values: dict[str, int]) -> dict[str, int]:
    """The highest syscall number the profile names, per architecture."""
    names = {n for rule in oci.get("syscalls") or [] for n in rule["names"]}
    out = {}
    for token, value in arch_values.items():
        numbers = [seccomp.resolve_syscall(value, n) for n in names]
        valid = [n for n in numbers if n >= 0]
        if token == "SCMP_ARCH_X32":
            valid = [n & ~X32_SYSCALL_BIT for n in valid]
        if valid:
            out[token] = max(valid)
    return out
