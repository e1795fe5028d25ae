"""Connecting the caller's terminal to a container's pty (``run -it``, ``exec -it``).

The caller's terminal goes into raw mode (so Ctrl-C reaches the container's line discipline as a byte,
and the container's shell handles it), bytes are copied both ways until the container side closes,
and SIGWINCH re-sends the window size. The terminal is restored however the copy ends.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import termios
import tty
from typing import Iterator

from engine.runtime.process import copy_winsize


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def relay(master: int, *, stdin: int | None, stdout: int = 1) -> None:
    """Copy stdin -> master and master -> stdout until the container's side of the pty closes."""
    # The window size follows whichever end is the caller's terminal (``-t`` without ``-i`` too).
    size_from = next((fd for fd in (stdin, stdout) if fd is not None and os.isatty(fd)), None)
    previous = None
    if size_from is not None:
        previous = signal.signal(signal.SIGWINCH, lambda *_: copy_winsize(size_from, master))
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    if stdin is not None:
        sel.register(stdin, selectors.EVENT_READ)
    try:
        with raw_mode(stdin) if stdin is not None else contextlib.nullcontext():
            while True:
                for key, _ in sel.select():
                    if key.fd == master:
                        try:
                            data = os.read(master, 65536)
                        except OSError as exc:
                            if exc.errno == errno.EIO:  # every slave fd closed: the container is done
                                return
                            raise
                        if not data:
                            return
                        _write_all(stdout, data)
                    else:
                        data = os.read(key.fd, 65536)
                        if not data:
                            sel.unregister(key.fd)  # caller's input ended; keep the output flowing
                            continue
                        _write_all(master, data)
    finally:
        sel.close()
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)
