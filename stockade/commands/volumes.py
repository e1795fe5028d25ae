"""``volume create|ls|inspect|rm|prune``: Docker's named volumes (``engine.volumes``).

A volume in use by any container (running or not) is never removed without ``-f``; ``prune`` removes
unused anonymous volumes (and, with ``-a``, unused named ones too), as Docker 23 and later do.
"""

from __future__ import annotations

import argparse
from typing import Any

from stockade.commands.batch import each, print_pruned
from stockade.context import Context
from stockade.output import add_output_flag, print_json, print_table


def _volumes(ctx: Context) -> Any:
    from engine.volumes import Volumes

    return Volumes(ctx.paths.root, ctx.paths)


def _in_use(ctx: Context) -> set[str]:
    from engine.containers.lifecycle import volumes_in_use
    from engine.containers.store import ContainerStore

    return volumes_in_use(ContainerStore(ctx.paths))


def cmd_create(ctx: Context) -> int:
    ctx.paths.make_root()
    labels = dict(label.partition("=")[::2] for label in ctx.args.label)
    vol = _volumes(ctx).create(ctx.args.name, labels=labels)
    print(vol.name)
    return 0


def cmd_ls(ctx: Context) -> int:
    vols = _volumes(ctx).list()
    if ctx.args.quiet:
        for v in vols:
            print(v.name)
    elif ctx.output == "json":
        print_json([v.inspect() for v in vols])
    else:
        print_table([v.inspect() for v in vols], [("driver", "Driver"), ("volume name", "Name")])
    return 0


def cmd_inspect(ctx: Context) -> int:
    vols = _volumes(ctx)
    print_json([vols.get(name).inspect() for name in ctx.args.names])
    return 0


def cmd_rm(ctx: Context) -> int:
    vols = _volumes(ctx)
    in_use = _in_use(ctx)
    return each(ctx.args.names, lambda name: vols.remove(name, in_use=in_use, force=ctx.args.force))


def cmd_prune(ctx: Context) -> int:
    removed = _volumes(ctx).prune(in_use=_in_use(ctx), all_volumes=ctx.args.all)
    print_pruned(ctx, "Volumes", removed)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("volume", help="manage volumes")
    vsub = group.add_subparsers(dest="volume_command", metavar="COMMAND", parser_class=type(group))

    p = vsub.add_parser("create", help="create a named volume")
    p.add_argument("name", nargs="?", metavar="NAME", help="volume name (default: a random one)")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_create)

    for name in ("ls", "list"):
        p = vsub.add_parser(name, help="list volumes")
        p.add_argument("-q", "--quiet", action="store_true", help="only names")
        add_output_flag(p)
        p.set_defaults(func=cmd_ls)

    p = vsub.add_parser("inspect", help="show volumes as JSON")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.set_defaults(func=cmd_inspect)

    p = vsub.add_parser("rm", help="remove volumes")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.add_argument("-f", "--force", action="store_true", help="remove even if a container uses it")
    p.set_defaults(func=cmd_rm)

    p = vsub.add_parser("prune", help="remove unused anonymous volumes (-a: all unused)")
    p.add_argument("-a", "--all", action="store_true", help="named volumes too")
    p.add_argument("-f", "--force", action="store_true", help="do not ask (there is no prompt)")
    add_output_flag(p)
    p.set_defaults(func=cmd_prune)
