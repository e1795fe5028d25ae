"""The grammar of Docker's run-flag values, in one place for the ``run`` verb and for run lines.

``stockade run`` parses its own flags into engine options (and its gate states them in the input
document), and ``policy check`` reads the run lines of scripts (``policies.runline``); both must read
``--security-opt no-new-privileges=false`` or ``-u app:0`` the same way, or a line the check allowed
could run differently. This module imports nothing, so the run verb can use it without loading the
policy engine.
"""

from __future__ import annotations

from typing import Any

TRUE_WORDS = ("", "true", "1")
FALSE_WORDS = ("false", "0")


def parse_bool(value: str, flag: str) -> bool:
    """A boolean flag value as Docker reads it (a bare ``no-new-privileges`` is true); ``ValueError``
    naming ``flag`` otherwise."""
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ValueError(f"{flag}: expected true or false, found {value!r}")


def user_fact(text: str) -> dict[str, Any]:
    """``-u NAME|UID[:GROUP|GID]`` as the input document's ``container.user`` states it (a name is
    resolved only at start, in the image's own ``/etc/passwd``)."""
    user, _, group = text.partition(":")
    out: dict[str, Any] = {"uid": int(user)} if user.isascii() and user.isdigit() else {"name": user}
    if group.isascii() and group.isdigit():
        out["gid"] = int(group)
    return out


def split_option(option: str) -> tuple[str, bool, str]:
    """``--security-opt`` ``KEY=VALUE`` (or Docker's older ``KEY:VALUE``) -> (key, had a value, value)."""
    key, sep, value = option.partition("=" if "=" in option else ":")
    return key, bool(sep), value
