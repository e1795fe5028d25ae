"""The grammar of Docker's run-flag values, in one place for the ``run`` verb and for run lines.

``stockade run`` parses its own flags into engine options, and ``policy check`` reads the run lines of
scripts (``policies.runline``); both must read ``--security-opt no-new-privileges=false`` the same way,
or a line the check allowed could run differently. This module imports nothing, so the run verb can
use it without loading the policy engine.
"""

from __future__ import annotations

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


def split_option(option: str) -> tuple[str, bool, str]:
    """``--security-opt`` ``KEY=VALUE`` (or Docker's older ``KEY:VALUE``) -> (key, had a value, value)."""
    key, sep, value = option.partition("=" if "=" in option else ":")
    return key, bool(sep), value
