"""A ``stockade run`` (or ``docker run`` / ``podman run``) command line -> an input document.

``policy check`` gates the run lines of scripts and CI jobs the same way it gates manifests. Flags
keep Docker's names and spellings (``--cap-add``, ``--security-opt seccomp=…``, ``-v SRC:DST:ro``,
``--mount type=bind,…``, ``--tmpfs``, ``--network host``, ``-u``, ``-m``, ``--cpus``,
``--pids-limit``), so a line that runs under Docker is read as Docker reads it. Flags that do not
bear on the policy (``-e``, ``--name``, ``-p``, …) are accepted and ignored; an unknown flag is an
error, so nothing can slip past the check by being misread. Values the line does not give are left
unset: ``harden`` fills them exactly as ``stockade run`` would. The flag set matches
``stockade/commands/containers.py`` (the ``run`` verb) plus Docker flags it does not have yet.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import shlex
from typing import Any, Callable, Sequence

from policies.model import parse_bytes
from policies.runflags import parse_bool, split_option, user_fact

SECURITY_VALUE_FLAGS: dict[str, tuple[str, ...]] = {
    "user": ("-u", "--user"), "cap_add": ("--cap-add",), "cap_drop": ("--cap-drop",),
    "security_opt": ("--security-opt",), "network": ("--network", "--net"), "pid": ("--pid",),
    "ipc": ("--ipc",), "uts": ("--uts",), "userns": ("--userns",), "cgroupns": ("--cgroupns",),
    "volume": ("-v", "--volume"), "mount": ("--mount",), "tmpfs": ("--tmpfs",), "memory": ("-m", "--memory"),
    "cpus": ("--cpus",), "pids_limit": ("--pids-limit",), "device": ("--device",), "policy": ("--policy",),
    "volumes_from": ("--volumes-from",),
}
REPEATABLE = {"cap_add", "cap_drop", "security_opt", "volume", "mount", "tmpfs", "device", "volumes_from"}
SECURITY_SWITCHES = {"read_only": ("--read-only",), "privileged": ("--privileged",)}
IGNORED_VALUE_FLAGS = ("-e", "--env", "--env-file", "--name", "-p", "--publish", "-w", "--workdir", "--entrypoint",
                       "-h", "--hostname", "-l", "--label", "--label-file", "--restart", "--stop-signal",
                       "--stop-timeout", "--log-driver", "--log-opt", "--add-host", "--dns", "--dns-search",
                       "--cidfile", "--pull", "--ulimit", "--shm-size", "--memory-swap", "--group-add", "--platform",
                       "--expose", "--health-cmd", "--mac-address", "--ip", "--hostname", "-a", "--attach")
IGNORED_SWITCHES = ("--rootfs", "-d", "--detach", "-i", "--interactive", "-t", "--tty", "--rm", "--init", "-P", "--publish-all",
                    "--no-healthcheck", "-q", "--quiet")
ENGINES = ("stockade", "docker", "podman")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="stockade run", add_help=False, allow_abbrev=False)
    for dest, flags in SECURITY_VALUE_FLAGS.items():
        p.add_argument(*flags, dest=dest, action="append" if dest in REPEATABLE else "store")
    for dest, flags in SECURITY_SWITCHES.items():
        p.add_argument(*flags, dest=dest, action="store_true", default=None)
    seen = {f for flags in SECURITY_VALUE_FLAGS.values() for f in flags}
    for flag in dict.fromkeys(IGNORED_VALUE_FLAGS):
        if flag not in seen:
            p.add_argument(flag, action="append", dest=f"ignored{flag.replace('-', '_')}")
    for flag in IGNORED_SWITCHES:
        p.add_argument(flag, action="store_true", dest=f"ignored{flag.replace('-', '_')}")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)
    return p


def split_run_line(line: str) -> list[str]:
    """The arguments after ``run`` in ``[sudo] stockade|docker|podman [globals] run ARGS…``."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise ValueError(f"cannot split the command line: {exc}") from None
    while words and (words[0] == "sudo" or words[0] == "$"):
        words = words[1:]
    if not words or os.path.basename(words[0]) not in ENGINES:
        raise ValueError("not a stockade/docker/podman run line")
    try:
        at = words.index("run")
    except ValueError:
        raise ValueError("no 'run' verb on the line") from None
    return words[at + 1:]


def _mount_spec(text: str) -> dict[str, Any]:
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        fields[key.strip().lower()] = value if eq else ""
    mtype = fields.get("type", "volume")
    if mtype not in ("bind", "volume", "tmpfs"):
        raise ValueError(f"--mount type={mtype!r} is not bind, volume or tmpfs")
    target = fields.get("target") or fields.get("destination") or fields.get("dst")
    if not target:
        raise ValueError(f"--mount {text!r} has no target")
    read_only = any(k in fields and parse_bool(fields[k], "--mount readonly") for k in ("readonly", "ro"))
    source = fields.get("source") or fields.get("src")
    return {"type": mtype, "source": source, "destination": target, "readOnly": read_only,
            "kind": "local" if mtype == "volume" else None}


def _volume_spec(text: str, cwd: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) == 1:
        return {"type": "volume", "source": None, "destination": parts[0], "readOnly": False, "kind": "local"}
    source, dest, opts = parts[0], parts[1], parts[2].split(",") if len(parts) > 2 else []
    if len(parts) > 3:
        raise ValueError(f"-v {text!r}: expected SRC:DST[:OPTIONS]")
    bind = source.startswith(("/", ".", "~"))
    if bind and not source.startswith("/"):
        source = posixpath.normpath(posixpath.join(cwd, os.path.expanduser(source)))
    return {"type": "bind" if bind else "volume", "source": source, "destination": dest,
            "readOnly": "ro" in opts or "readonly" in opts, "kind": None if bind else "local"}


def document_from_run_args(args: Sequence[str], *, cwd: str = "/",
                           hash_file: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    """The input document a run with these arguments requests (``ValueError`` for a bad line).

    ``hash_file`` returns the sha256 of a Localhost seccomp profile (the CLI reads the file);
    without it a Localhost profile has no sha256 and cannot match a pinned one.
    """
    ns = _parser().parse_args(list(args))
    c: dict[str, Any] = {}
    if ns.user:
        c["user"] = user_fact(ns.user)
    if ns.read_only:
        c["readOnlyRootFilesystem"] = True
    if ns.privileged:
        c["privileged"] = True
    caps = {"add": ns.cap_add or [], "drop": ns.cap_drop or []}
    if caps["add"] or caps["drop"]:
        c["capabilities"] = caps
    options = ns.security_opt or []
    for opt in options:
        key, given, value = split_option(opt)
        if key == "seccomp":
            if value == "unconfined":
                c["seccomp"] = {"type": "Unconfined"}
            elif value in ("", "builtin", "default"):
                c["seccomp"] = {"type": "RuntimeDefault"}
            else:
                profile = posixpath.normpath(posixpath.join(cwd, value))
                c["seccomp"] = {"type": "Localhost", "profile": profile,
                                "sha256": hash_file(profile) if hash_file else None}
        elif key == "no-new-privileges":
            c["noNewPrivileges"] = parse_bool(value if given else "", "--security-opt no-new-privileges")
    if options:
        c["securityOptions"] = list(options)
    namespaces = {}
    for ns_name, value in (("network", ns.network), ("pid", ns.pid), ("ipc", ns.ipc), ("uts", ns.uts),
                           ("user", ns.userns), ("cgroup", ns.cgroupns)):
        if value:
            namespaces[ns_name] = value if value in ("host", "none") or value.startswith("container:") else "private"
    if namespaces:
        c["namespaces"] = namespaces
    mounts = [_volume_spec(v, cwd) for v in ns.volume or []] + [_mount_spec(m) for m in ns.mount or []]
    for t in ns.tmpfs or []:
        dest, _, opts = t.partition(":")
        mounts.append({"type": "tmpfs", "source": None, "destination": dest, "readOnly": "ro" in opts.split(","),
                       "kind": None})
    # Another container's volumes may include bind mounts this line cannot see: a kind no profile
    # allows, so a policy must opt in to them explicitly.
    mounts += [{"type": "volume", "source": v.partition(":")[0], "destination": "(volumes-from)",
                "readOnly": v.endswith(":ro"), "kind": "volumes-from"} for v in ns.volumes_from or []]
    if mounts:
        c["mounts"] = mounts
    resources: dict[str, Any] = {}
    if ns.memory:
        resources["memory"] = parse_bytes(ns.memory)
    if ns.cpus:
        try:
            resources["cpus"] = float(ns.cpus)
        except ValueError:
            raise ValueError(f"--cpus {ns.cpus!r} is not a number") from None
    if ns.pids_limit:
        try:
            pids = int(ns.pids_limit)
        except ValueError:
            raise ValueError(f"--pids-limit {ns.pids_limit!r} is not a whole number") from None
        resources["pids"] = pids if pids > 0 else None
    if resources:
        c["resources"] = resources
    if ns.device:
        c["devices"] = list(ns.device)
    context: dict[str, Any] = {"kind": "run", "argv": list(args), "command": ns.command}
    if ns.policy:
        context["policy"] = ns.policy
    return {"image": {"reference": ns.image}, "container": c, "context": context}
