"""Command-line parsing as runc does it (urfave/cli over Go's ``flag`` package), without argparse.

Callers are programs (containerd's shim, conmon, podman), and they write flags the Go way: ``-root X``
and ``--root X``, ``--root=X``, boolean flags as ``--detach`` or ``--detach=false``, and flag parsing
stops at the first argument that is not a flag (``exec ID sh -c …`` keeps ``-c`` for the command) or
at ``--``. An unknown flag is an error worded as runc words it. argparse would cost this process (one
per container operation) a few milliseconds of import for no gain.
"""

from __future__ import annotations

from engine.errors import UsageError

BOOL, TEXT, INT, LIST = "bool", "text", "int", "list"
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


class Flag:
    """One flag: its name, kind (``BOOL``, ``TEXT``, ``INT``, ``LIST``), short aliases and default.
    (Plain classes, not dataclasses: importing ``dataclasses`` costs this process milliseconds.)"""

    __slots__ = ("name", "kind", "aliases", "default")

    def __init__(self, name: str, kind: str = BOOL, aliases: tuple[str, ...] = (), default: object = None) -> None:
        self.name, self.kind, self.aliases, self.default = name, kind, aliases, default


class Parsed:
    """The flag values by name, and the arguments after the flags."""

    __slots__ = ("values", "rest")

    def __init__(self, values: dict[str, object]) -> None:
        self.values = values
        self.rest: list[str] = []

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name))

    def number(self, name: str) -> int:
        value = self.values.get(name)
        return int(value) if isinstance(value, int) else 0

    def many(self, name: str) -> list[str]:
        value = self.values.get(name)
        return list(value) if isinstance(value, list) else []


def _convert(flag: Flag, raw: str, where: str) -> object:
    if flag.kind == BOOL:
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise UsageError(f'invalid boolean value "{raw}" for -{flag.name}{where}')
    if flag.kind == INT:
        try:
            return int(raw, 0)
        except ValueError:
            raise UsageError(f'invalid value "{raw}" for flag -{flag.name}{where}: parse error') from None
    return raw


def parse(args: list[str], flags: tuple[Flag, ...], *, where: str = "") -> Parsed:
    """Parse leading flags of ``args``; the first non-flag argument and everything after is ``rest``."""
    table = {alias: f for f in flags for alias in (f.name, *f.aliases)}
    out = Parsed({f.name: ([] if f.kind == LIST else f.default) for f in flags})
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if len(arg) < 2 or not arg.startswith("-"):
            break
        body = arg[2:] if arg.startswith("--") else arg[1:]
        name, eq, value = body.partition("=")
        flag = table.get(name)
        if flag is None or not name:
            raise UsageError(f"flag provided but not defined: -{name}{where}")
        if flag.kind == BOOL and not eq:
            parsed: object = True
        elif eq:
            parsed = _convert(flag, value, where)
        else:
            if i + 1 >= len(args):
                raise UsageError(f"flag needs an argument: -{name}{where}")
            i += 1
            parsed = _convert(flag, args[i], where)
        if flag.kind == LIST:
            out.values[flag.name].append(parsed)  # type: ignore[union-attr]
        else:
            out.values[flag.name] = parsed
        i += 1
    out.rest = args[i:]
    return out
