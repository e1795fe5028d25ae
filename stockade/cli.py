"""The ``stockade`` command line: global options, verb registration, and the error convention.

Conventions every verb follows (README "Exit codes"):

* a failure caused by input is one line ``stockade: error: <what, where, what to do>`` on stderr;
* exit 0 on success, 1 on an error, 2 on a usage or configuration error; verbs that gate CI
  (verify, policy check, audit, run) document their own additional codes;
* a traceback only with ``--debug``.

Verb modules live in ``stockade.commands``; each exposes ``register(subparsers)`` and keeps its
top-level imports light: heavy modules (sigstore, tuf, CEL) are imported inside the handler that needs
them, so ``stockade run`` of a cached image never pays for them. A command line imports and builds
only its own verb's module (``VERB_MODULES``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from typing import Callable, Sequence

from stockade import __version__
from stockade.context import Context

# Each module registers its verbs on the root sub-parser; order is the order of ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "stockade.commands.system",
    "stockade.commands.containers",
    "stockade.commands.volumes",
    "stockade.commands.images",
    "stockade.commands.login",
    "stockade.commands.inspect",
    "stockade.commands.keys",
    "stockade.commands.signing",
    "stockade.commands.tuf",
    "stockade.commands.audit",
    "stockade.commands.policy",
    "stockade.commands.admission",
)

Handler = Callable[[Context], int | None]


class _Parser(argparse.ArgumentParser):
    """argparse with the ``stockade: error:`` prefix on every sub-command too (usage errors exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"stockade: error: {message}\n")
        sys.exit(2)


# Which module registers each top-level verb, so a command line builds only its verb's module's
# parsers: the full tree (~90 sub-parsers, each help string looked up through gettext) cost ~50 ms of
# every command. tests/stockade/test_cli.py checks this table against the full tree. A module may
# also expose ``VERBS = {verb: add(sub, verb)}`` to build one verb alone (``run`` does not pay for
# the ``container`` group). ``--help``, no verb and an unknown verb build the full tree, so help lists
# every verb and argparse names the valid choices.
VERB_MODULES: dict[str, str] = {
    **dict.fromkeys(("version", "info", "unshare"), "stockade.commands.system"),
    **dict.fromkeys(("run", "create", "start", "stop", "restart", "kill", "rm", "ps", "logs", "exec",
                     "top", "wait", "container"), "stockade.commands.containers"),
    "volume": "stockade.commands.volumes",
    **dict.fromkeys(("pull", "push", "images", "rmi", "tag", "history", "save", "load", "import",
                     "image"), "stockade.commands.images"),
    **dict.fromkeys(("login", "logout"), "stockade.commands.login"),
    "inspect": "stockade.commands.inspect",
    "key": "stockade.commands.keys",
    **dict.fromkeys(("sign", "attest", "verify", "verify-attestation", "sign-blob", "verify-blob"),
                    "stockade.commands.signing"),
    "trust": "stockade.commands.tuf",
    "audit": "stockade.commands.audit",
    "policy": "stockade.commands.policy",
    "admission": "stockade.commands.admission",
}
_GLOBAL_WITH_VALUE = ("--root", "--runroot", "--config")
VERSION_ONLY = ""  # ``build_parser(VERSION_ONLY)``: the global options alone (``stockade --version``)


def selected_verb(argv: Sequence[str]) -> str | None:
    """What ``argv`` needs parsed: its verb when it names a known one, ``VERSION_ONLY`` for a global
    ``--version`` before any verb, None (the full tree) for ``-h``/``--help``, no verb or an unknown
    one."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            return None
        if arg == "--version":
            return VERSION_ONLY
        if arg in _GLOBAL_WITH_VALUE:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return arg if arg in VERB_MODULES else None
    return None


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``verb``'s module alone, for no verb (``VERSION_ONLY``), or for every verb (None)."""
    parser = _Parser(prog="stockade",
                     description="Run signed container images under enforced hardening.")
    parser.add_argument("--version", action="version", version=f"stockade version {__version__}")
    parser.add_argument("--root", metavar="DIR",
                        help="store root (default /var/lib/stockade, or $XDG_DATA_HOME/stockade "
                             "for other users)")
    parser.add_argument("--runroot", metavar="DIR",
                        help="runtime state directory (default /run/stockade, or <root>/run "
                             "when --root is given)")
    parser.add_argument("--config", metavar="FILE",
                        help="configuration file (default: /etc/stockade/config.toml then "
                             "~/.config/stockade/config.toml; env STOCKADE_CONFIG)")
    parser.add_argument("--debug", action="store_true", help="print a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if verb == VERSION_ONLY:
        return parser
    if verb is not None:
        module = importlib.import_module(VERB_MODULES[verb])
        add_one = getattr(module, "VERBS", {}).get(verb)
        if add_one is not None:
            add_one(sub, verb)
        else:
            module.register(sub)
        return parser
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _report(message: str) -> None:
    sys.stderr.write(f"stockade: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` and return its exit code.

    Without ``argv`` this is the process's entry point (the console script, ``python -m stockade``)
    and reads ``sys.argv``. Then, once the verb is done, the objects still alive are moved out of
    the garbage collector's reach (``gc.freeze``): the interpreter's exit no longer walks them all
    looking for cycles in memory the kernel is about to reclaim (~8 ms of a warm ``run``). Exit still
    releases them by reference count (files are flushed and closed); only cyclic garbage is left to
    the kernel."""
    if argv is not None:
        return _main(list(argv))
    code = _main(sys.argv[1:])
    gc.freeze()
    return code


def _main(arguments: list[str]) -> int:
    parser = build_parser(selected_verb(arguments))
    args = parser.parse_args(arguments)
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    ctx = Context(args)
    try:
        return int(handler(ctx) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``stockade images | head``); say nothing, as coreutils do.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed pipe for exit
        except OSError:
            pass
        return 1
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes one line
        if args.debug:
            import traceback

            traceback.print_exc()
        if getattr(exc, "user_facing", False):
            _report(str(exc))
            return int(getattr(exc, "exit_code", 1))
        if isinstance(exc, OSError) and exc.strerror:
            where = f": {exc.filename}" if exc.filename else ""
            _report(f"{exc.strerror}{where}")
            return 1
        if not args.debug:
            _report(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
