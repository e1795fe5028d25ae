"""``version`` and ``info``: what is installed and what this host offers containers."""

from __future__ import annotations

import argparse
import platform
import sys

from stockade import __version__
from stockade.context import Context
from stockade.output import add_output_flag, print_json, print_mapping


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("version", help="show version information")
    add_output_flag(p)
    p.set_defaults(func=cmd_version)

    p = sub.add_parser("info", help="show the store, the configuration and the kernel's features")
    add_output_flag(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("unshare", help="run a command as root of your rootless user namespace "
                                       "(to delete or chown files your containers' users made)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                   help="the command and its arguments (default: your shell)")
    p.set_defaults(func=cmd_unshare)


def _version_data() -> dict[str, object]:
    return {
        "version": __version__,
        "python": platform.python_version(),
        "os": sys.platform,
        "arch": platform.machine(),
        "kernel": platform.release(),
    }


def cmd_version(ctx: Context) -> int:
    data = _version_data()
    if ctx.output == "json":
        print_json(data)
    else:
        print_mapping({"Stockade": {k.capitalize(): v for k, v in data.items()}})
    return 0


def cmd_info(ctx: Context) -> int:
    from engine.host import probe

    paths, config = ctx.paths, ctx.config
    host = probe(rootless=paths.rootless)
    cgroups = host.cgroups
    data = {
        "version": __version__,
        "root": str(paths.root),
        "runroot": str(paths.runroot),
        "storage_driver": config.storage.driver,
        "rootless": paths.rootless,
        "config_files": list(config.sources),
        "default_policy": config.policy.default,
        "host": host.as_dict(),
    }
    if ctx.output == "json":
        print_json(data)
        return 0
    print_mapping({
        "Version": __version__,
        "Store root": data["root"],
        "Run root": data["runroot"],
        "Storage driver": data["storage_driver"],
        "Rootless": "yes" if paths.rootless else "no",
        "Config files": data["config_files"],
        "Default policy": data["default_policy"],
        "Kernel": {
            "Release": host.kernel,
            "User namespaces": f"yes (max {host.max_user_namespaces})" if host.user_namespaces else "no",
            "newuidmap": "yes" if host.newuidmap else "no",
            "Overlayfs": "yes" if host.overlayfs else "no",
            "Seccomp": ("yes (" + " ".join(host.seccomp_actions) + ")") if host.seccomp else "no",
            "Cgroup layout": cgroups.layout,
            "Cgroup manager": cgroups.describe_for(rootless=paths.rootless),
            "Cgroup v1 controllers": sorted(cgroups.v1_mounts),
            "Cgroup v2 controllers": list(cgroups.v2_controllers),
        },
    })
    return 0


def cmd_unshare(ctx: Context) -> int:
    """podman unshare: a container's users are the user's subordinate ids on the host, so what they
    write through ``-v $HOME/dir:/data`` is not the user's to delete or chown; as root of the same
    user namespace (the maps a container gets) it is. Exit code: the command's."""
    import os
    import shutil
    import signal

    from engine.errors import NotFoundError, UsageError
    from engine.runtime.userns import run_in_userns
    from engine.store.rootless import UserNamespace

    if not ctx.paths.rootless:
        raise UsageError("unshare is for rootless users: root reaches every file without a user namespace")
    argv = ctx.args.command or [os.environ.get("SHELL") or "/bin/sh"]
    program = shutil.which(argv[0])
    if program is None:
        raise NotFoundError(f"unshare: {argv[0]}: command not found")
    ns = UserNamespace.for_user(ctx.paths)
    # Ctrl-C is the command's to handle (a shell ignores it); a Python handler, unlike SIG_IGN, is
    # reset to the default by the command's exec.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        code, _, _ = run_in_userns([os.path.abspath(program), *argv[1:]], ns.uid_maps, ns.gid_maps,
                                   capture=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    return code
