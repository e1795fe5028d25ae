"""The socket that joins the stages of a launch (or an exec), and how errors cross it.

One ``SOCK_SEQPACKET`` pair per launch: each message is one short datagram (``go``, ``pid:123``, a pty
master passed with SCM_RIGHTS, or ``err:{json}``). The child's end is close-on-exec, so the builder
reading end-of-file means the command has been exec'd; anything that fails before sends one ``err:``
message with the text the user will see and the exit code Docker would give (125 for a set-up failure,
126 for a command that cannot be run, 127 for one that is not found).
"""

from __future__ import annotations

import json
import socket

from engine.errors import StockadeError

MSG_SIZE = 4096


class LaunchError(StockadeError):
    """The container (or exec'd process) could not be started (Docker's exit code 125)."""

    exit_code = 125


class CommandError(StockadeError):
    """The command could not be exec'd: 127 if not found, 126 if not executable (as Docker)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def expect(sock: socket.socket, prefix: bytes, stage: str) -> bytes:
    """Receive the next message, which must start with ``prefix``; return the rest."""
    data = sock.recv(MSG_SIZE)
    if data.startswith(b"err:"):
        raise_reported(data[4:])
    if not data.startswith(prefix):
        raise LaunchError(f"set-up ended unexpectedly during {stage}")
    return data[len(prefix):]


def receive_fd(sock: socket.socket, tag: bytes, stage: str) -> int:
    msg, fds, _, _ = socket.recv_fds(sock, MSG_SIZE, 1)
    if msg.startswith(b"err:"):
        raise_reported(msg[4:])
    if msg != tag or not fds:
        raise LaunchError(f"set-up ended unexpectedly during {stage}")
    return fds[0]


def wait_exec(sock: socket.socket) -> None:
    """Block until the child has exec'd (end-of-file) or reported why it could not."""
    data = sock.recv(MSG_SIZE)
    if data.startswith(b"err:"):
        raise_reported(data[4:])


def raise_reported(payload: bytes) -> None:
    try:
        info = json.loads(payload)
        message, code = str(info["message"]), int(info["code"])
    except (ValueError, KeyError, TypeError):
        raise LaunchError("set-up failed (unreadable error report)") from None
    if code in (126, 127):
        raise CommandError(message, code)
    raise LaunchError(message)


def report(sock: socket.socket, exc: BaseException) -> None:
    """Send ``exc`` to the builder as the one line the user will see."""
    code = exc.exit_code if isinstance(exc, CommandError) else 125
    if isinstance(exc, StockadeError):
        message = str(exc)
    elif isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        message = f"{exc.strerror or exc}{where}"
    else:
        message = f"{type(exc).__name__}: {exc}"
    try:
        sock.send(b"err:" + json.dumps({"message": message, "code": code}).encode())
    except OSError:
        pass
