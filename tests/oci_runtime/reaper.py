"""A minimal shim for the tests: what containerd's shim and conmon are to ``stockade-runtime create``.

``python -m tests.oci_runtime.reaper STATUS_FILE -- COMMAND…`` becomes a child subreaper, runs
COMMAND (a ``create``), and reaps every process that ends up its child: the ``create`` process, then
the container's init once it re-parents here. Each exit is appended to STATUS_FILE as ``pid code``.
A signal's death is written as 128+N, as containerd reports it. It exits when no child is left. Its
stdio is the container's (the test points it at files).
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> None:
    status_file = sys.argv[1]
    command = sys.argv[sys.argv.index("--") + 1:]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    pid = os.fork()
    if pid == 0:
        os.execv(command[0], command)
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        with open(status_file, "a") as f:
            f.write(f"{reaped} {code}\n")


if __name__ == "__main__":
    main()
