"""The built-in profiles, shipped as policy files: ``privileged``, ``baseline``, ``restricted``.

Each is derived from a Kubernetes Pod Security Standards level and versioned like PSA's
``restricted:v1.30``: ``NAME-vN.yaml`` is version N, and a bare ``NAME`` means its newest version.
A version never changes once released; a stricter or looser revision is a new file, so a policy
pinned to ``restricted:v1`` keeps meaning the same thing.
"""

from __future__ import annotations

import re
from importlib import resources

NAMES = ("privileged", "baseline", "restricted")
DEFAULT = "restricted"
_FILE = re.compile(r"^(?P<name>[a-z]+)-v(?P<version>\d+)\.yaml$")


def available() -> dict[str, list[int]]:
    """``{name: [versions, ascending]}`` of the profile files in this package."""
    found: dict[str, list[int]] = {}
    for entry in resources.files(__name__).iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.setdefault(m["name"], []).append(int(m["version"]))
    return {name: sorted(v) for name, v in sorted(found.items())}


def resolve(spec: str) -> tuple[str, str]:
    """``restricted`` or ``restricted:v1`` -> (``restricted:v1``, the file's text).

    ``KeyError`` with a message naming what exists when the profile or version is unknown.
    """
    name, _, version = spec.partition(":")
    versions = available().get(name)
    if not versions:
        raise KeyError(f"unknown profile {name!r} (built-in: {', '.join(NAMES)})")
    if version:
        if not re.fullmatch(r"v\d+", version) or int(version[1:]) not in versions:
            raise KeyError(f"profile {name!r} has no version {version!r} "
                           f"(have {', '.join(f'v{v}' for v in versions)})")
        number = int(version[1:])
    else:
        number = versions[-1]
    text = resources.files(__name__).joinpath(f"{name}-v{number}.yaml").read_text(encoding="utf-8")
    return f"{name}:v{number}", text
