"""Container verbs, as Docker names them: ``run``, ``create``, ``start``, ``stop``, ``restart``, ``kill``,
``rm``, ``ps``, ``logs``, ``exec``, ``top``, ``wait``, and the ``container`` group (the same verbs plus
``ls``, ``inspect`` and ``prune``).

This module turns flags into plain values (``engine.containers.create.CreateOptions``, mount requests,
rlimits) and hands them to the run pipeline (``stockade.run``) or the engine's lifecycle functions.
Exit codes follow Docker's: ``run`` exits with the command's code, 125 when the container could not
be started, 126 when the command cannot be invoked, 127 when it is not found.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from engine.config import parse_size
from engine.errors import StockadeError, UsageError
from stockade.commands.batch import each, print_pruned
from stockade.context import Context
from stockade.output import add_output_flag, print_json, print_table

if TYPE_CHECKING:  # the engine's container code loads when a request is built, not at start-up
    from engine.containers.create import MountRequest
    from engine.spec import Rlimit

ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
           "rss", "rtprio", "rttime", "sigpending", "stack", "as")


class RunFlagError(UsageError):
    """A ``run`` flag's value is malformed (Docker exits 125 for these)."""

    exit_code = 125


# --- flag parsing -----------------------------------------------------------------------------------
def parse_volume(text: str) -> MountRequest:
    """``-v``: ``/host:/ctr[:ro]``, ``name:/ctr[:ro]``, or ``/ctr`` (an anonymous volume)."""
    from engine.containers.create import MountRequest

    parts = text.split(":")
    if len(parts) == 1:
        return MountRequest("volume", parts[0])
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise RunFlagError(f"invalid volume specification {text!r} (expected SOURCE:TARGET[:ro])")
    source, target = parts[0], parts[1]
    mode = parts[2].split(",") if len(parts) == 3 else []
    unknown = [m for m in mode if m not in ("ro", "rw", "z", "Z", "nocopy", "rprivate", "private")]
    if unknown:
        raise RunFlagError(f"invalid volume option {unknown[0]!r} in {text!r}")
    kind = "bind" if source.startswith(("/", ".")) else "volume"
    return MountRequest(kind, target, source, readonly="ro" in mode)


def parse_mount(text: str) -> MountRequest:
    """``--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]``."""
    from engine.containers.create import MountRequest

    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro") and not sep:
            value = "true"
        fields[key] = value
    kind = fields.pop("type", "volume")
    target = fields.pop("target", "") or fields.pop("destination", "") or fields.pop("dst", "")
    source = fields.pop("source", "") or fields.pop("src", "")
    readonly = (fields.pop("readonly", "") or fields.pop("ro", "")).lower() in ("true", "1")
    if kind not in ("bind", "volume", "tmpfs"):
        raise RunFlagError(f"--mount {text!r}: type must be bind, volume or tmpfs")
    if not target:
        raise RunFlagError(f"--mount {text!r}: a target is required")
    if kind == "bind" and not source:
        raise RunFlagError(f"--mount {text!r}: a bind mount needs a source")
    options = []
    if "tmpfs-size" in fields:
        options.append(f"size={parse_size(fields.pop('tmpfs-size'))}")
    if "tmpfs-mode" in fields:
        options.append(f"mode={fields.pop('tmpfs-mode')}")
    fields.pop("bind-propagation", None)
    fields.pop("volume-nocopy", None)
    if fields:
        raise RunFlagError(f"--mount {text!r}: unknown option {sorted(fields)[0]!r}")
    return MountRequest(kind, target, source, readonly=readonly, options=options)


def parse_tmpfs(text: str) -> MountRequest:
    """``--tmpfs /path[:rw,size=64m,mode=1777]``."""
    from engine.containers.create import MountRequest

    target, _, opts = text.partition(":")
    readonly, options = False, []
    for opt in filter(None, opts.split(",")):
        if opt == "ro":
            readonly = True
        elif opt == "rw":
            continue
        elif opt.startswith("size="):
            options.append(f"size={parse_size(opt[5:])}")
        elif opt.startswith("mode=") or opt in ("exec", "noexec", "suid", "nosuid", "dev", "nodev"):
            options.append(opt)
        else:
            raise RunFlagError(f"--tmpfs {text!r}: unknown option {opt!r}")
    return MountRequest("tmpfs", target, readonly=readonly, options=options)


def parse_ulimit(text: str) -> Rlimit:
    """``--ulimit nofile=1024[:2048]``."""
    from engine.spec import Rlimit

    name, sep, values = text.partition("=")
    if not sep or name not in ULIMITS:
        raise RunFlagError(f"invalid --ulimit {text!r} (expected NAME=SOFT[:HARD], NAME one of "
                           f"{', '.join(ULIMITS)})")
    soft_s, _, hard_s = values.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise RunFlagError(f"invalid --ulimit {text!r}: limits are integers") from None
    return Rlimit(f"RLIMIT_{name.upper()}", soft, hard)


def read_env_file(path: str) -> list[str]:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise RunFlagError(f"--env-file {path}: {exc.strerror}") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def run_request(args: argparse.Namespace) -> Any:
    """The ``RunRequest`` the parsed ``run``/``create`` flags describe."""
    from engine.containers.create import CreateOptions
    from hardening.capabilities import normalized
    from policies.runflags import parse_bool, split_option
    from stockade.run import RunRequest

    seccomp = None
    nnp = None
    security_opt = []
    for opt in args.security_opt:
        key, _, value = split_option(opt)
        if key == "no-new-privileges":
            try:
                nnp = parse_bool(value, "--security-opt no-new-privileges")
            except ValueError as exc:
                raise RunFlagError(str(exc)) from None
        elif key == "seccomp" and value:
            seccomp = value
        elif key in ("label", "apparmor") and value in ("disable", "unconfined"):
            pass  # neither SELinux nor AppArmor is used by Stockade: nothing to disable
        else:
            raise RunFlagError(f"unsupported --security-opt {opt!r} "
                               f"(supported: no-new-privileges[=BOOL], seccomp=unconfined|PATH)")
        security_opt.append(opt)
    if seccomp is not None and seccomp not in ("unconfined", "default"):
        seccomp = os.path.abspath(seccomp)
    log_max_size, log_max_file = None, None
    for opt in args.log_opt:
        key, _, value = opt.partition("=")
        try:
            if key == "max-size":
                log_max_size = parse_size(value)
            elif key == "max-file":
                log_max_file = int(value)
                if log_max_file < 1:
                    raise ValueError("max-file must be at least 1")
            else:
                raise RunFlagError(f"unsupported --log-opt {opt!r} (supported: max-size, max-file)")
        except ValueError as exc:
            raise RunFlagError(f"--log-opt {opt}: {exc}") from None
    env = []
    for path in args.env_file:
        env += read_env_file(path)
    env += args.env
    mounts = [parse_volume(v) for v in args.volume] + [parse_mount(m) for m in args.mount] + \
        [parse_tmpfs(t) for t in args.tmpfs]
    labels = {}
    for label in args.label:
        key, _, value = label.partition("=")
        labels[key] = value
    try:
        memory = parse_size(args.memory) if args.memory else None
    except ValueError as exc:
        raise RunFlagError(f"--memory: {exc}") from None
    if args.cpus is not None and args.cpus <= 0:
        raise RunFlagError("--cpus must be a positive number")
    entrypoint = None
    if args.entrypoint is not None:
        entrypoint = [args.entrypoint] if args.entrypoint else []
    options = CreateOptions(
        image=args.image, name=args.name, command=list(args.command), entrypoint=entrypoint,
        env=env, user=args.user, workdir=args.workdir, hostname=args.hostname, tty=args.tty,
        interactive=args.interactive, read_only=args.read_only, mounts=mounts,
        volumes_from=list(args.volumes_from), cap_add=normalized(args.cap_add),
        cap_drop=normalized(args.cap_drop), security_opt=security_opt, privileged=args.privileged,
        network=args.network, userns=args.userns or "", group_add=list(args.group_add),
        memory=memory, pids_limit=args.pids_limit, cpus=args.cpus,
        ulimits=[parse_ulimit(u) for u in args.ulimit], init=args.init, auto_remove=args.rm,
        stop_signal=args.stop_signal, stop_timeout=args.stop_timeout, labels=labels)
    return RunRequest(image=args.image, options=options, rootfs=args.rootfs, pull=args.pull,
                      detach=getattr(args, "detach", False), seccomp=seccomp, no_new_privileges=nnp,
                      log=(log_max_size, log_max_file), policy=args.policy)


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("image", metavar="IMAGE", help="image reference (or a directory with --rootfs)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND", help="command and arguments")
    p.add_argument("--rootfs", action="store_true",
                   help="IMAGE is a directory to use as the root filesystem as is (as podman)")
    p.add_argument("--pull", choices=("missing", "always", "never"), default="missing",
                   help="when to pull the image (default: missing)")
    p.add_argument("--policy", metavar="NAME|FILE",
                   help="the policy that admits the container: a built-in profile (restricted, baseline, "
                        "privileged) or a policy file (default: [policy] default, restricted)")
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open and attached")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("-e", "--env", action="append", default=[], metavar="NAME[=VALUE]",
                   help="set an environment variable")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="read environment variables from a file")
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside the container")
    p.add_argument("--entrypoint", metavar="CMD", help="override the image's ENTRYPOINT ('' clears it)")
    p.add_argument("-h", "--hostname", help="container host name")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]",
                   help="user name or uid (and group), resolved in the image's /etc/passwd")
    p.add_argument("--group-add", action="append", default=[], metavar="GROUP",
                   help="add a supplementary group")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP", help="add a capability")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                   help="drop a capability (ALL drops every one)")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="no-new-privileges[=BOOL], seccomp=unconfined|PROFILE.json")
    p.add_argument("--privileged", action="store_true",
                   help="give the container every capability and no seccomp filter (unsafe)")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]",
                   help="mount a tmpfs (e.g. /run:size=64m)")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="[SRC:]DST[:ro]",
                   help="bind-mount a host path or mount a named/anonymous volume")
    p.add_argument("--mount", action="append", default=[], metavar="SPEC",
                   help="type=bind|volume|tmpfs,source=…,target=…[,readonly]")
    p.add_argument("--volumes-from", action="append", default=[], metavar="CONTAINER[:ro|rw]",
                   help="mount the volumes of another container")
    p.add_argument("--network", "--net", choices=("none", "host"), default="none",
                   help="network: none (only loopback; default) or host")
    p.add_argument("--userns", choices=("host", "auto"), default=None,
                   help="user namespace: host (root's default) or auto (a private id range)")
    p.add_argument("-m", "--memory", metavar="BYTES", help="memory limit (e.g. 64m)")
    p.add_argument("--pids-limit", type=int, metavar="N", help="limit the number of processes")
    p.add_argument("--cpus", type=float, metavar="N", help="CPU quota in CPUs (e.g. 0.5)")
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
                   help="set an rlimit (never above the host's hard limit)")
    p.add_argument("--init", action="store_true",
                   help="run a minimal init as PID 1 that forwards signals and reaps zombies")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="json-file log options: max-size=SIZE, max-file=N")
    p.add_argument("--stop-signal", metavar="SIGNAL", help="signal to stop the container")
    p.add_argument("--stop-timeout", type=int, metavar="SECONDS",
                   help="seconds to wait before SIGKILL on stop (default 10)")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE",
                   help="set a label")


def _as_run_error(exc: Exception) -> StockadeError:
    """Docker exits 125 when the container could not be run (whatever failed: a registry, a file);
    126 and 127 (the command itself) and the policy's refusal (122) pass through."""
    from stockade.gate import EXIT_DENIED

    if isinstance(exc, StockadeError):
        if exc.exit_code not in (126, 127, EXIT_DENIED):
            exc.exit_code = 125
        return exc
    where = f": {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    err = StockadeError(f"{text}{where}")
    err.exit_code = 125
    return err


def cmd_run(ctx: Context) -> int:
    from stockade.run import run

    try:
        return run(ctx, with_config(ctx, run_request(ctx.args)))
    except (StockadeError, OSError) as exc:
        raise _as_run_error(exc) from None


def cmd_create(ctx: Context) -> int:
    from stockade.run import create

    try:
        doc = create(ctx, with_config(ctx, run_request(ctx.args)))
    except (StockadeError, OSError) as exc:
        raise _as_run_error(exc) from None
    print(doc["Id"])
    return 0


def with_config(ctx: Context, req: Any) -> Any:
    """Fill what the flags left to the configuration: log rotation and the user namespace mode."""
    cfg = ctx.config.containers
    size, files = req.log
    req.options.log_max_size = cfg.log_max_size if size is None else size
    req.options.log_max_file = cfg.log_max_file if files is None else files
    if not req.options.userns:
        req.options.userns = cfg.userns
    if ctx.paths.rootless and req.options.userns == "auto":
        req.options.userns = "host"  # rootless always runs in the user's own namespace
    if req.options.memory or req.options.pids_limit or req.options.cpus:
        from engine.host import probe_cgroups

        if probe_cgroups().manager_for(rootless=ctx.paths.rootless) == "none":
            if not ctx.paths.rootless:
                raise UsageError("--memory, --pids-limit and --cpus need a cgroup hierarchy with the "
                                 "memory, pids and cpu controllers, and this host has none "
                                 "(see stockade info)")
            req.warnings.append("resource limits are not supported and ignored on cgroups v1 "
                                "rootless systems")
            # Ignored means gone, as in podman: the policy must not admit, inspect report or the
            # audit pass a limit nothing enforces.
            req.options.memory = req.options.pids_limit = req.options.cpus = None
    return req


# --- lifecycle verbs --------------------------------------------------------------------------------
def _store(ctx: Context) -> Any:
    from engine.containers.store import ContainerStore

    return ContainerStore(ctx.paths)


def _each(ctx: Context, action: Any) -> int:
    """Apply ``action(store, ref)`` to every named container (see ``each``)."""
    store = _store(ctx)
    return each(ctx.args.containers, lambda ref: action(store, ref))


def cmd_start(ctx: Context) -> int:
    from engine.containers.lifecycle import start

    return _each(ctx, lambda store, ref: start(ctx.paths, store, ref))


def cmd_stop(ctx: Context) -> int:
    from engine.containers.lifecycle import stop

    return _each(ctx, lambda store, ref: stop(store, ref, ctx.args.time))


def cmd_restart(ctx: Context) -> int:
    from engine.containers.lifecycle import restart

    return _each(ctx, lambda store, ref: restart(ctx.paths, store, ref, ctx.args.time))


def cmd_kill(ctx: Context) -> int:
    from engine.containers.lifecycle import kill

    return _each(ctx, lambda store, ref: kill(store, ref, ctx.args.signal))


def cmd_rm(ctx: Context) -> int:
    from engine.containers.lifecycle import remove

    return _each(ctx, lambda store, ref: remove(store, ref, force=ctx.args.force,
                                                volumes=ctx.args.volumes))


def cmd_prune(ctx: Context) -> int:
    from engine.containers.lifecycle import prune

    removed = prune(_store(ctx))
    print_pruned(ctx, "Containers", removed)
    return 0


def cmd_wait(ctx: Context) -> int:
    from engine.containers.lifecycle import current, wait_monitor

    store = _store(ctx)
    for ref in ctx.args.containers:
        doc = current(store, ref)
        wait_monitor(doc, None)
        print(current(store, doc["Id"])["State"]["ExitCode"])
    return 0


# --- ps, inspect, logs, top -------------------------------------------------------------------------
def _ago(stamp: str) -> str:
    import calendar
    import time

    try:
        then = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return ""
    seconds = max(0, int(time.time() - then))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _status(doc: dict[str, Any]) -> str:
    st = doc["State"]
    if st["Status"] == "running":
        return f"Up {_ago(st['StartedAt'])}"
    if st["Status"] == "exited":
        return f"Exited ({st['ExitCode']}) {_ago(st['FinishedAt'])} ago"
    return st["Status"].capitalize()


def _command_text(doc: dict[str, Any]) -> str:
    text = " ".join([doc["Path"], *doc["Args"]])
    return f'"{text[:20]}…"' if len(text) > 20 else f'"{text}"'


def cmd_ps(ctx: Context) -> int:
    from engine.containers.lifecycle import all_records

    docs = [d for d in all_records(_store(ctx)) if ctx.args.all or d["State"]["Running"]]
    if ctx.args.quiet:
        for d in docs:
            print(d["Id"][:12])
        return 0
    if ctx.output == "json":
        print_json([{"Id": d["Id"], "Names": [d["Name"].lstrip("/")], "Image": d["Config"]["Image"],
                     "ImageID": d["Image"], "Command": " ".join([d["Path"], *d["Args"]]),
                     "Created": d["Created"], "State": d["State"]["Status"], "Status": _status(d),
                     "ExitCode": d["State"]["ExitCode"], "Pid": d["State"]["Pid"]} for d in docs])
        return 0
    print_table(docs, [("container id", lambda d: d["Id"][:12]), ("image", lambda d: d["Config"]["Image"]),
                       ("command", _command_text), ("created", lambda d: f"{_ago(d['Created'])} ago"),
                       ("status", _status), ("names", lambda d: d["Name"].lstrip("/"))])
    return 0


def inspect_container(ctx: Context, name: str) -> dict[str, Any] | None:
    """The Docker-shaped inspect document of container ``name``, or None if there is none."""
    from engine.containers.lifecycle import current
    from engine.errors import NotFoundError

    try:
        return current(_store(ctx), name)
    except NotFoundError:
        return None


def cmd_inspect(ctx: Context) -> int:
    from stockade.commands.inspect import inspect_objects

    print_json(inspect_objects(ctx, ctx.args.containers, ["container"], "container"))
    return 0


def cmd_logs(ctx: Context) -> int:
    from engine.containers import logs, state
    from engine.containers.lifecycle import current

    store = _store(ctx)
    doc = current(store, ctx.args.container)
    path = store.log_path(doc["Id"])
    stamps = ctx.args.timestamps

    def emit(entry: dict[str, str]) -> None:
        out = sys.stderr if entry.get("stream") == "stderr" else sys.stdout
        out.write((f"{entry.get('time', '')} " if stamps else "") + entry["log"])
        out.flush()

    tail = None if ctx.args.tail in (None, "all") else int(ctx.args.tail)
    for entry in logs.entries(path, tail):
        emit(entry)
    if ctx.args.follow:
        cid = doc["Id"]
        for entry in logs.follow(path, lambda: state.is_running(store.load(cid)), start_at_end=True):
            emit(entry)
    return 0


def cmd_top(ctx: Context) -> int:
    from engine.containers.lifecycle import current
    from engine.containers.processes import list_processes

    doc = current(_store(ctx), ctx.args.container)
    rows = list_processes(doc)
    if ctx.output == "json":
        print_json(rows)
    else:
        print_table(rows, [("uid", "uid"), ("pid", "pid"), ("ppid", "ppid"), ("stime", "stime"),
                           ("cmd", "cmd")])
    return 0


def cmd_exec(ctx: Context) -> int:
    from engine.containers.execute import ExecOptions, exec_in

    args = ctx.args
    if not args.command:
        raise UsageError("exec needs a command")
    env = []
    for path in args.env_file:
        env += read_env_file(path)
    env += args.env
    try:
        return exec_in(ctx.paths, _store(ctx), args.container,
                       ExecOptions(command=list(args.command), env=env, user=args.user,
                                   workdir=args.workdir, interactive=args.interactive, tty=args.tty,
                                   detach=args.detach))
    except (StockadeError, OSError) as exc:
        raise _as_run_error(exc) from None


# --- registration -----------------------------------------------------------------------------------
def _names(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


Parsers = argparse._SubParsersAction  # type: ignore[type-arg]


def _add_run(sub: Parsers, name: str) -> None:
    p = sub.add_parser(name, add_help=False, help="create and run a container")
    add_run_flags(p)
    p.add_argument("-d", "--detach", action="store_true", help="run in the background, print the id")
    p.set_defaults(func=cmd_run)


def _add_create(sub: Parsers, name: str) -> None:
    p = sub.add_parser(name, add_help=False, help="create a container without starting it")
    add_run_flags(p)
    p.set_defaults(func=cmd_create, detach=False)


def _add_stop_like(sub: Parsers, name: str) -> None:
    func, helptext = {"start": (cmd_start, "start stopped containers (detached)"),
                      "stop": (cmd_stop, "stop running containers"),
                      "restart": (cmd_restart, "restart containers")}[name]
    p = sub.add_parser(name, help=helptext)
    _names(p)
    if name != "start":
        p.add_argument("-t", "--time", type=int, default=None, metavar="SECONDS",
                       help="seconds to wait before killing (default: the container's, 10)")
    p.set_defaults(func=func)


def _add_kill(sub: Parsers, name: str) -> None:
    p = sub.add_parser(name, help="send a signal to running containers")
    _names(p)
    p.add_argument("-s", "--signal", default="SIGKILL", help="signal to send (default SIGKILL)")
    p.set_defaults(func=cmd_kill)


def _add_rm(sub: Parsers, name: str) -> None:
    p = sub.add_parser(name, help="remove containers")
    _names(p)
    p.add_argument("-f", "--force", action="store_true", help="kill and remove running containers")
    p.add_argument("-v", "--volumes", action="store_true", help="also remove anonymous volumes")
    p.set_defaults(func=cmd_rm)


def _add_ps(sub: Parsers, name: str) -> None:
    p = sub.add_parser(name, help="list containers")
    p.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    add_output_flag(p)
    p.set_defaults(func=cmd_ps)


def _add_logs(sub: Parsers, name: str) -> None:
    p = sub.add_parser(name, help="show a detached container's output")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("-n", "--tail", default=None, metavar="N", help="only the last N lines")
    p.add_argument("-t", "--timestamps", action="store_true", help="prefix each line with its time")
    p.set_defaults(func=cmd_logs)


def _add_exec(sub: Parsers, name: str) -> None:
    p = sub.add_parser(name, help="run a command in a running container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the command")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]", help="user (default: the container's)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="NAME[=VALUE]")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE")
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory")
    p.set_defaults(func=cmd_exec)


def _add_top(sub: Parsers, name: str) -> None:
    p = sub.add_parser(name, help="list a container's processes")
    p.add_argument("container", metavar="CONTAINER")
    add_output_flag(p)
    p.set_defaults(func=cmd_top)


def _add_wait(sub: Parsers, name: str) -> None:
    p = sub.add_parser(name, help="wait for containers to exit and print their exit codes")
    _names(p)
    p.set_defaults(func=cmd_wait)


# Top-level verb -> the function that registers it (the CLI builds just the one it runs: ``run``
# does not pay for the ``container`` group; ``register`` builds them all, plus that group).
VERBS = {"run": _add_run, "create": _add_create, "start": _add_stop_like, "stop": _add_stop_like,
         "restart": _add_stop_like, "kill": _add_kill, "rm": _add_rm, "ps": _add_ps, "logs": _add_logs,
         "exec": _add_exec, "top": _add_top, "wait": _add_wait}


def register(sub: Parsers) -> None:
    for verb, add in VERBS.items():
        add(sub, verb)
    group = sub.add_parser("container", help="manage containers (Docker's container subcommands)")
    gsub = group.add_subparsers(dest="container_command", metavar="COMMAND",
                                parser_class=type(group))
    for verb, add in VERBS.items():
        add(gsub, verb)
    _add_ps(gsub, "ls")
    _add_ps(gsub, "list")
    p = gsub.add_parser("inspect", help="show containers' state and configuration as JSON")
    _names(p)
    p.set_defaults(func=cmd_inspect)
    p = gsub.add_parser("prune", help="remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true", help="do not ask (there is no prompt)")
    add_output_flag(p)
    p.set_defaults(func=cmd_prune)
