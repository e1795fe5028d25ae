"""Image-name globs as cosign's policy-controller and Kyverno write them.

``*`` matches within one path segment, ``**`` across segments, ``?`` one character that is not a
``/``. ``ghcr.io/org/*`` therefore matches ``ghcr.io/org/app`` but not ``ghcr.io/org/team/app``;
``ghcr.io/org/**`` matches both. Patterns are matched against the whole name (anchored), so
``ghcr.io/org/**`` never matches ``evil.io/ghcr.io/org/x``.
"""

from __future__ import annotations

import re
from functools import lru_cache

_ALLOWED = re.compile(r"^[A-Za-z0-9._\-/:@*?\[\]]+$")


def check_glob(pattern: str) -> str:
    """Validate a glob (used by the policy loader); return it unchanged."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("expected a non-empty glob string")
    if not _ALLOWED.match(pattern):
        raise ValueError(f"glob {pattern!r} has characters an image name cannot contain")
    if "***" in pattern:
        raise ValueError(f"glob {pattern!r}: use '*' (one segment) or '**' (any depth)")
    return pattern


@lru_cache(maxsize=4096)
def compile_glob(pattern: str, fold_case: bool = False) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE if fold_case else 0)


def matches(patterns: tuple[str, ...], name: str) -> bool:
    """Whether ``name`` (a path: case counts) matches any of ``patterns``."""
    return any(compile_glob(p).match(name) for p in patterns)


def matches_image(patterns: tuple[str, ...], name: str) -> bool:
    """Whether the image name or registry ``name`` matches any of ``patterns``, ignoring case: a
    registry host is case-insensitive (``REG.EXAMPLE.COM/org/app`` is pulled from the same server
    as ``reg.example.com/org/app``, so it must meet the same signature requirements), and a
    repository is lower case by the reference grammar."""
    return any(compile_glob(p, True).match(name) for p in patterns)


def matches_signed_image(patterns: tuple[str, ...], name: str) -> bool:
    """``matches_image`` for the ``signatures`` entries, with the registry's default HTTPS port
    written or not: ``reg.example.com:443/org/app`` is pulled from the same server as
    ``reg.example.com/org/app``, so an entry naming either spelling applies to both. A requirement
    only ever applies to more names this way; ``allowedRegistries`` and exceptions stay literal."""
    if matches_image(patterns, name):
        return True
    host, _, rest = name.partition("/")
    if host.endswith(":443"):
        return matches_image(patterns, f"{host[:-4]}/{rest}")
    if ":" not in host.rpartition("]")[2]:  # no port (an IPv6 literal's colons are inside brackets)
        return matches_image(patterns, f"{host}:443/{rest}")
    return False
