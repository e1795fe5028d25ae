"""The ``stockade-runtime`` command: runc's command line, verb by verb.

``stockade-runtime [GLOBAL FLAGS] VERB [FLAGS] ARGS``. Global flags, as runc takes them: ``--root DIR``
(state, default ``/run/stockade-runtime``), ``--log FILE``, ``--log-format text|json``, ``--debug``,
``--systemd-cgroup`` (``linux.cgroupsPath`` is systemd's ``slice:prefix:name``; the container is put
where systemd would put it, through cgroupfs: see ``cgroupspath``), and, accepted for the callers that
pass them, ``--criu`` (no checkpointing here) and ``--rootless`` (decided by the effective uid). Stockade
adds ``--node-policy FILE``.

Each invocation is one short process, and containerd starts several per container, so this module
imports only what parsing needs: each verb imports its own modules when it runs. Errors are one line
in the runtime log (level ``error``, what containerd and conmon show) and on stderr; the exit status
is 1 (2 for a command line runc would refuse), or the container's own for a foreground ``run``/``exec``.
"""

from __future__ import annotations

import sys

from stockade.oci_runtime.argv import INT, LIST, TEXT, Flag, Parsed, parse
from stockade.oci_runtime.runlog import RuntimeLog

GLOBAL_FLAGS = (
    Flag("root", TEXT, default="/run/stockade-runtime"), Flag("log", TEXT), Flag("log-format", TEXT, default="text"),
    Flag("debug"), Flag("systemd-cgroup"), Flag("criu", TEXT), Flag("rootless", TEXT), Flag("node-policy", TEXT),
    Flag("help", aliases=("h",)), Flag("version", aliases=("v",)),
)
_CREATE = (Flag("bundle", TEXT, ("b",), "."), Flag("console-socket", TEXT), Flag("pid-file", TEXT),
           Flag("no-pivot"), Flag("no-new-keyring"), Flag("preserve-fds", INT, default=0),
           Flag("pidfd-socket", TEXT))
VERB_FLAGS: dict[str, tuple[Flag, ...]] = {
    "create": _CREATE,
    "run": _CREATE + (Flag("detach", aliases=("d",)), Flag("keep"), Flag("no-subreaper")),
    "start": (), "state": (),
    "kill": (Flag("all", aliases=("a",)),),
    "delete": (Flag("force", aliases=("f",)),),
    "exec": (Flag("process", TEXT, ("p",)), Flag("detach", aliases=("d",)), Flag("pid-file", TEXT),
             Flag("console-socket", TEXT), Flag("tty", aliases=("t",)), Flag("cwd", TEXT),
             Flag("env", LIST, ("e",)), Flag("user", TEXT, ("u",)), Flag("additional-gids", LIST, ("g",)),
             Flag("cap", LIST, ("c",)), Flag("no-new-privs"), Flag("preserve-fds", INT, default=0),
             Flag("process-label", TEXT), Flag("apparmor", TEXT), Flag("cgroup", LIST),
             Flag("ignore-paused"), Flag("pidfd-socket", TEXT)),
    "ps": (Flag("format", TEXT, ("f",), "table"),),
    "list": (Flag("format", TEXT, ("f",), "table"), Flag("quiet", aliases=("q",))),
    "features": (),
    "spec": (Flag("bundle", TEXT, ("b",), "."), Flag("rootless")),
}
UNSUPPORTED = ("pause", "resume", "update", "events", "checkpoint", "restore")
USAGE = """usage: stockade-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug]
                        [--systemd-cgroup] [--node-policy FILE] VERB [FLAGS] ARGS
verbs: create start run state kill delete exec ps list features spec
"""


class Globals:
    """What every verb needs: the state root, the log, and the global switches."""

    __slots__ = ("root", "log", "systemd_cgroup", "node_policy")

    def __init__(self, root: str, log: RuntimeLog, systemd_cgroup: bool = False,
                 node_policy: str | None = None) -> None:
        self.root, self.log, self.systemd_cgroup, self.node_policy = root, log, systemd_cgroup, node_policy


def version_text() -> str:
    """Three lines, as ``runc --version`` prints them (go-runc parses them)."""
    from stockade import __version__
    from stockade.oci_runtime.state import OCI_VERSION

    return f"stockade-runtime version {__version__}\ncommit: stockade {__version__}\nspec: {OCI_VERSION}\n"


def _one_id(p: Parsed, verb: str) -> str:
    if len(p.rest) != 1:
        from engine.errors import UsageError

        raise UsageError(f'"{verb}" requires exactly 1 argument (the container id)')
    return p.rest[0]


def dispatch(g: Globals, verb: str, args: list[str]) -> int:
    """Run ``verb``; its exit status (errors raise)."""
    if verb in UNSUPPORTED:
        from stockade.oci_runtime.state import ContainerError

        raise ContainerError(f"{verb} is not supported by stockade-runtime")
    flags = VERB_FLAGS.get(verb)
    if flags is None:
        from engine.errors import UsageError

        raise UsageError(f"No help topic for '{verb}'")
    p = parse(args, flags, where=f" (in {verb})")
    if verb in ("create", "run"):
        from stockade.oci_runtime import create

        if p.flag("no-pivot"):
            g.log.info("--no-pivot is ignored: the root is always pivoted into and the old root detached")
        req = create.CreateRequest(_one_id(p, verb), p.text("bundle") or ".", p.text("pid-file"),
                                   p.text("console-socket"), p.number("preserve-fds"))
        if verb == "run":
            return create.run(g, req, detach=p.flag("detach"))
        create.create(g, req)
        return 0
    if verb == "exec":
        from stockade.oci_runtime.execute import ExecRequest, execute

        if not p.rest:
            from engine.errors import UsageError

            raise UsageError('"exec" requires a container id')
        return execute(g, ExecRequest(
            p.rest[0], p.text("process"), p.rest[1:], p.flag("tty"), p.text("cwd"), p.many("env"),
            p.text("user"), p.many("additional-gids"), p.many("cap"), p.flag("no-new-privs"),
            p.flag("detach"), p.text("pid-file"), p.text("console-socket")))
    if verb == "features":
        from stockade.oci_runtime.features import print_features

        print_features()
        return 0
    if verb == "spec":
        from stockade.oci_runtime.features import write_spec

        write_spec(p.text("bundle") or ".")
        return 0
    from stockade.oci_runtime import lifecycle

    if verb == "list":
        lifecycle.list_containers(g, p.text("format") or "table", p.flag("quiet"))
    elif verb == "kill":
        if len(p.rest) not in (1, 2):
            from engine.errors import UsageError

            raise UsageError('"kill" requires 1 or 2 arguments (the container id, a signal)')
        lifecycle.kill(g, p.rest[0], p.rest[1] if len(p.rest) == 2 else "SIGTERM", all_processes=p.flag("all"))
    elif verb == "ps":
        lifecycle.ps(g, p.rest[0] if p.rest else _one_id(p, verb), p.text("format") or "table", p.rest[1:])
    elif verb == "start":
        lifecycle.start(g, _one_id(p, verb))
    elif verb == "state":
        lifecycle.state(g, _one_id(p, verb))
    else:
        lifecycle.delete(g, _one_id(p, verb), force=p.flag("force"))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    log = RuntimeLog()
    try:
        p = parse(args, GLOBAL_FLAGS)
        log = RuntimeLog(p.text("log"), p.text("log-format") or "text", debug=p.flag("debug"))
        if p.text("log-format") not in ("text", "json"):
            from engine.errors import UsageError

            raise UsageError(f"unknown log-format {p.text('log-format')!r} (text or json)")
        if p.flag("version"):
            sys.stdout.write(version_text())
            return 0
        if p.flag("help") or not p.rest:
            sys.stdout.write(USAGE)
            return 0 if p.flag("help") else 1
        g = Globals(root=p.text("root") or "/run/stockade-runtime", log=log,
                    systemd_cgroup=p.flag("systemd-cgroup"), node_policy=p.text("node-policy"))
        log.debug(f"{p.rest[0]}: {' '.join(args)}")
        return dispatch(g, p.rest[0], p.rest[1:])
    except Exception as exc:  # noqa: BLE001 - every failure is one line for the caller
        user_facing = getattr(exc, "user_facing", False)
        if not user_facing and log.debug_enabled:
            import traceback

            log.debug(traceback.format_exc())
        log.error(str(exc) if user_facing else f"{type(exc).__name__}: {exc}")
        return int(getattr(exc, "exit_code", 1)) if type(exc).__name__ == "UsageError" else 1
    finally:
        log.close()


if __name__ == "__main__":
    sys.exit(main())
