"""``stockade key generate``: a signing key pair for ``sign``, ``attest`` and ``sign-blob``.

The private key is written encrypted (PKCS#8 by default, or cosign's format with ``--format
cosign`` so cosign and skopeo can sign with the same file), mode 0600, never replacing an existing
file without ``--force``. The password comes from ``$STOCKADE_PASSWORD`` or the terminal.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Callable

from engine.errors import UsageError

from stockade.context import Context
from stockade.output import add_output_flag, print_json

PASSWORD_ENV = "STOCKADE_PASSWORD"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from trust.options import KEY_FORMATS, KEY_KINDS

    key = sub.add_parser("key", help="manage signing keys",
                         description="Signing keys for sign, attest and sign-blob.")
    key.set_defaults(func=lambda ctx: _help(key))
    verbs = key.add_subparsers(dest="key_command", metavar="COMMAND")
    p = verbs.add_parser("generate", help="generate an encrypted key pair (PREFIX.key, PREFIX.pub)",
                         description="Generate a key pair: PREFIX.key (encrypted, mode 0600) and "
                                     f"PREFIX.pub. The password comes from ${PASSWORD_ENV} or a prompt.")
    p.add_argument("--type", choices=KEY_KINDS, default="ecdsa-p256",
                   help="key algorithm (default ecdsa-p256, as cosign)")
    p.add_argument("--format", choices=KEY_FORMATS, default="pkcs8", dest="key_format",
                   help="private key file format: pkcs8 (encrypted PKCS#8 PEM) or cosign "
                        "(ENCRYPTED SIGSTORE PRIVATE KEY, readable by cosign and skopeo)")
    p.add_argument("--output-key-prefix", metavar="PREFIX", default="stockade",
                   help="write PREFIX.key and PREFIX.pub (default: stockade)")
    p.add_argument("--force", action="store_true", help="replace existing key files")
    add_output_flag(p)
    p.set_defaults(func=cmd_generate)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def password_source(prompt: str, *, confirm: bool = False) -> Callable[[], bytes]:
    """The key password: ``$STOCKADE_PASSWORD``, else asked on the terminal, only when needed."""
    def ask() -> bytes:
        env = os.environ.get(PASSWORD_ENV)
        if env is not None:
            return env.encode()
        if not sys.stdin.isatty():
            raise UsageError(f"a key password is needed: set {PASSWORD_ENV} or run on a terminal")
        password = getpass.getpass(f"{prompt}: ")
        if confirm and getpass.getpass("Repeat the password: ") != password:
            raise UsageError("the passwords do not match")
        return password.encode()
    return ask


def cmd_generate(ctx: Context) -> int:
    from trust import keys

    args = ctx.args
    key = keys.generate(args.type)
    password = password_source("Password for the new private key", confirm=True)()
    key_path, pub_path = keys.write_key_pair(key, password, Path(args.output_key_prefix), force=args.force,
                                             key_format=args.key_format)
    data = {"private_key": str(key_path), "public_key": str(pub_path), "key_id": key.public.key_id,
            "type": args.type, "format": args.key_format}
    if ctx.output == "json":
        print_json(data)
    else:
        print(f"Private key written to {key_path}")
        print(f"Public key written to {pub_path}")
        print(f"Key id: {key.public.key_id}")
    return 0
