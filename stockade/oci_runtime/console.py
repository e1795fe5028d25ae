"""``--console-socket``: hand the container's pty master to the caller, as runc does.

The caller (containerd's shim, conmon) listens on a unix socket; the runtime connects and sends one
message whose payload is the pty's name (``/dev/pts/N``) with the master as SCM_RIGHTS ancillary data,
then closes its own copy. The caller holds the terminal from then on; the runtime exits.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct

from engine.errors import StockadeError

_TIOCGPTN = 0x80045430


class ConsoleError(StockadeError):
    """The console socket cannot be reached or refuses the terminal."""


def pty_name(master: int) -> str:
    try:
        number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, b"\0" * 4))[0]
    except OSError:
        return "/dev/console"
    return f"/dev/pts/{number}"


def send_master(path: str, master: int) -> None:
    """Send ``master`` over the unix socket at ``path``; the caller's copy is closed either way."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            socket.send_fds(sock, [pty_name(master).encode()], [master])
    except OSError as exc:
        raise ConsoleError(f"cannot send the terminal to the console socket {path}: "
                           f"{exc.strerror or exc}") from None
    finally:
        os.close(master)
