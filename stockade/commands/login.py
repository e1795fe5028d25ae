"""``login`` and ``logout``: registry credentials, checked against the registry before they are saved.

Credentials go to Stockade's auth file (``--authfile``, ``$REGISTRY_AUTH_FILE`` or
``<config dir>/auth.json``, mode 0600, written atomically); Docker's ``config.json`` is only read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import NotFoundError, UsageError
from engine.reference import DEFAULT_REGISTRY
from stockade.commands.images import add_registry_flags, prompt_password, registry_client
from stockade.context import Context


def _password(ctx: Context, user: str) -> str:
    args = ctx.args
    if args.password_stdin:
        if args.password is not None:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
        password = args.password
    else:
        password = prompt_password(user, "use --password-stdin (or a terminal to be prompted)")
    if not password:
        raise UsageError("the password is empty")
    return password


def cmd_login(ctx: Context) -> int:
    from engine.registry.credentials import Credentials, normalize_host

    args = ctx.args
    registry = normalize_host(args.server or DEFAULT_REGISTRY)
    user = args.username
    if not user:
        if not sys.stdin.isatty() or args.password_stdin:
            raise UsageError("no username: use -u USER")
        user = input("Username: ").strip()
    credentials = Credentials(user, _password(ctx, user))
    client = registry_client(ctx, credentials)
    try:
        client.check_login(registry)
    finally:
        client.close()
    client.credential_store.save(registry, credentials)
    print("Login Succeeded!")
    return 0


def cmd_logout(ctx: Context) -> int:
    from engine.registry.credentials import normalize_host

    args = ctx.args
    client = registry_client(ctx)
    store = client.credential_store
    if args.all:
        for registry in store.registries():
            store.remove(registry)
        print("Removed login credentials for all registries")
        return 0
    registry = normalize_host(args.server or DEFAULT_REGISTRY)
    if not store.remove(registry):
        raise NotFoundError(f"not logged in to {registry} (no entry in {store.auth_file})")
    print(f"Removed login credentials for {registry}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("login", help="log in to a registry (credentials are checked, then saved)")
    p.add_argument("server", nargs="?", metavar="SERVER",
                   help=f"registry host[:port] (default {DEFAULT_REGISTRY})")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add_registry_flags(p, creds=False)
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("logout", help="forget the credentials for a registry")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.add_argument("-a", "--all", action="store_true", help="forget every registry")
    p.add_argument("--authfile", type=Path, metavar="FILE", help="credentials file")
    p.set_defaults(func=cmd_logout)
