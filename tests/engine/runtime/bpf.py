"""A classic-BPF interpreter for seccomp programs, so tests can ask a compiled filter what it decides
for a syscall (number, architecture, arguments) without loading it into the kernel."""

from __future__ import annotations

import struct

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000


def seccomp_data(nr: int, arch: int = AUDIT_ARCH_X86_64, args: tuple[int, ...] = ()) -> bytes:
    padded = list(args) + [0] * (6 - len(args))
    return struct.pack("<iIQ6Q", nr, arch, 0, *padded)


def run(program: bytes, data: bytes) -> int:
    """The 32-bit return value of ``program`` for ``data`` (a struct seccomp_data)."""
    insns = [struct.unpack_from("<HBBI", program, off) for off in range(0, len(program), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if code == 0x20:  # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
        elif code == 0x00:  # ld #k
            a = k
        elif code == 0x60:  # ld M[k]
            a = mem[k]
        elif code == 0x61:  # ldx M[k]
            x = mem[k]
        elif code == 0x01:  # ldx #k
            x = k
        elif code == 0x02:  # st M[k]
            mem[k] = a
        elif code == 0x03:  # stx M[k]
            mem[k] = x
        elif code == 0x07:  # tax
            x = a
        elif code == 0x87:  # txa
            a = x
        elif code == 0x54:  # and #k
            a &= k
        elif code == 0x44:  # or #k
            a |= k
        elif code == 0x05:  # ja
            pc += k
        elif cls == 0x05:  # conditional jumps, K or X operand
            operand = x if code & 0x08 else k
            op = code & 0xF0
            if op == 0x10:
                taken = a == operand
            elif op == 0x20:
                taken = a > operand
            elif op == 0x30:
                taken = a >= operand
            elif op == 0x40:
                taken = bool(a & operand)
            else:
                raise ValueError(f"unknown jump opcode {code:#x}")
            pc += jt if taken else jf
        elif code == 0x06:  # ret #k
            return k
        elif code == 0x16:  # ret a
            return a
        else:
            raise ValueError(f"unknown BPF opcode {code:#x} at {pc - 1}")
