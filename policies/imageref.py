"""Just enough of Docker's reference grammar to name an image for policy matching.

``policies`` imports nothing of ours, yet it must match globs against ``registry/repository`` for
manifests and run lines whose builders give only the reference text. This applies Docker's
normalisation (``busybox`` is ``docker.io/library/busybox``; the first component is a registry when
it has a ``.`` or ``:`` or is ``localhost``) and refuses what is not a reference. Builders that have
``engine.reference`` should fill ``registry``/``repository``/``tag``/``digest`` themselves; the
evaluator only falls back to this when they are absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_REGISTRY = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$")


@dataclass(frozen=True, slots=True)
class ImageName:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"


def split_reference(text: str) -> ImageName:
    """Split and normalise an image reference; ``ValueError`` names what is wrong."""
    if not text or len(text) > 1024 or text != text.strip():
        raise ValueError(f"{text!r} is not an image reference")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise ValueError(f"{text!r}: malformed digest {digest!r}")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.match(tag):
            raise ValueError(f"{text!r}: malformed tag {tag!r}")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _REGISTRY.match(first):
            raise ValueError(f"{text!r}: malformed registry {first!r}")
        registry, repository = first, remainder
    else:
        registry, repository = "docker.io", rest
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
        if "/" not in repository:
            repository = f"library/{repository}"
    if not _REPOSITORY.match(repository):
        raise ValueError(f"{text!r}: malformed repository {repository!r} (lowercase letters, digits, . _ -)")
    return ImageName(registry, repository, tag, digest)
