"""Image references, normalized exactly as Docker does.

``busybox`` means ``docker.io/library/busybox:latest``; ``127.0.0.1:5000/ns/repo:tag@sha256:…`` names a
registry, a repository, a tag and a digest. The grammar is the distribution project's
(``reference/regexp.go``); the normalization rules are Docker's (``reference/normalize.go``):

* the first path component is a registry host only if it contains ``.`` or ``:``, is ``localhost``,
  or has upper-case letters; otherwise the registry is ``docker.io``;
* ``index.docker.io`` is ``docker.io``, and a one-component name there gets ``library/``;
* with neither tag nor digest the tag is ``latest``; with a digest and no tag there is no tag.

Every malformed form raises :class:`ReferenceError` saying what is wrong with which part, because a
reference is typed by a person and "invalid reference format" teaches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from engine.errors import StockadeError

DEFAULT_REGISTRY = "docker.io"
LEGACY_REGISTRIES = ("index.docker.io", "registry-1.docker.io")
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = re.compile(r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])")
_IPV6 = re.compile(r"\[[a-fA-F0-9:]+\]")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_ALGORITHM = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*")
# Registered algorithms and their encodings (OCI image-spec descriptor.md): lower-case hex only.
DIGEST_ALGORITHMS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")


class ReferenceError(StockadeError):
    """An image reference (or a digest in one) is malformed."""


def validate_digest(text: str, *, what: str = "digest", context: str = "") -> str:
    """Return ``text`` if it is a well-formed ``algorithm:hex`` digest of a registered algorithm.

    Registries and manifests are not trusted: a digest string from either goes through here before
    it is used in a URL or a file name, so ``sha256:../../etc`` can never become a path.
    """
    def bad(reason: str) -> ReferenceError:
        return ReferenceError(f"invalid {what} {text!r}{context}: {reason}")

    algorithm, sep, encoded = text.partition(":")
    if not sep or not algorithm or not encoded:
        raise bad("expected algorithm:hex, e.g. sha256:<64 hex digits>")
    if not _ALGORITHM.fullmatch(algorithm):
        raise bad(f"malformed algorithm {algorithm!r}")
    length = DIGEST_ALGORITHMS.get(algorithm)
    if length is None:
        raise bad(f"unsupported algorithm {algorithm!r} (supported: {', '.join(DIGEST_ALGORITHMS)})")
    if not _HEX.fullmatch(encoded):
        raise bad("the encoded part must be lower-case hex")
    if len(encoded) != length:
        raise bad(f"{algorithm} needs {length} hex digits, got {len(encoded)}")
    return text


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: (registry, repository) before validation of either."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        registry, repository = DEFAULT_REGISTRY, name
    else:
        registry, repository = first, rest
    if registry in LEGACY_REGISTRIES:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"{OFFICIAL_NAMESPACE}/{repository}"
    return registry, repository


def _check_registry(registry: str, text: str) -> None:
    host, port = registry, None
    if registry.startswith("["):
        end = registry.find("]")
        host, rest = registry[:end + 1], registry[end + 1:]
        if end < 0 or not _IPV6.fullmatch(host) or (rest and not rest.startswith(":")):
            raise ReferenceError(f"invalid reference {text!r}: malformed IPv6 registry host {registry!r}")
        if rest:
            port = rest[1:]
    else:
        if ":" in registry:
            host, port = registry.split(":", 1)
        if not host or not all(_DOMAIN_COMPONENT.fullmatch(c) for c in host.split(".")):
            raise ReferenceError(f"invalid reference {text!r}: malformed registry host {host!r}")
    if port is not None and (not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536):
        raise ReferenceError(f"invalid reference {text!r}: registry port {port!r} is not a number "
                             "from 1 to 65535")


def _check_repository(repository: str, text: str) -> None:
    if not repository:
        raise ReferenceError(f"invalid reference {text!r}: the repository name is empty")
    if repository != repository.lower():
        raise ReferenceError(f"invalid reference {text!r}: repository name {repository!r} must be "
                             "lower-case")
    for component in repository.split("/"):
        if not component:
            raise ReferenceError(f"invalid reference {text!r}: empty path component in "
                                 f"{repository!r} (a leading, trailing or doubled '/')")
        if not _PATH_COMPONENT.fullmatch(component):
            raise ReferenceError(
                f"invalid reference {text!r}: path component {component!r} may hold only a-z, 0-9 "
                "and single '.', '_', '__' or '-' separators between them")


@dataclass(frozen=True)
class Reference:
    """A normalized image reference. ``str()`` is the canonical form Stockade stores and prints."""

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Reference":
        """Parse and normalize ``text``; raise :class:`ReferenceError` naming the malformed part."""
        if not isinstance(text, str) or not text.strip():
            raise ReferenceError("invalid reference: it is empty")
        if text != text.strip() or any(c.isspace() for c in text):
            raise ReferenceError(f"invalid reference {text!r}: it contains white space")
        if "://" in text:
            raise ReferenceError(f"invalid reference {text!r}: a reference has no scheme; drop "
                                 f"{text.split('://', 1)[0] + '://'!r}")
        remainder, at, digest = text.partition("@")
        if at:
            if "@" in digest:
                raise ReferenceError(f"invalid reference {text!r}: more than one '@'")
            validate_digest(digest, context=f" in reference {text!r}")
        tag: str | None = None
        slash = remainder.rfind("/")
        colon = remainder.rfind(":")
        if colon > slash:
            remainder, tag = remainder[:colon], remainder[colon + 1:]
            if not tag:
                raise ReferenceError(f"invalid reference {text!r}: the tag after ':' is empty")
            if not _TAG.fullmatch(tag):
                raise ReferenceError(
                    f"invalid reference {text!r}: tag {tag!r} must be 1 to 128 characters of "
                    "A-Z, a-z, 0-9, '_', '.' and '-', not starting with '.' or '-'")
        if not remainder:
            raise ReferenceError(f"invalid reference {text!r}: the repository name is empty")
        if len(remainder) > MAX_NAME_LENGTH:
            raise ReferenceError(f"invalid reference {text[:40]!r}…: the name is {len(remainder)} "
                                 f"characters long (at most {MAX_NAME_LENGTH})")
        registry, repository = _split_domain(remainder)
        _check_registry(registry, text)
        _check_repository(repository, text)
        if tag is None and not at:
            tag = DEFAULT_TAG
        return cls(registry=registry, repository=repository, tag=tag, digest=digest or None)

    @property
    def name(self) -> str:
        """``registry/repository``: the full name ``images`` prints in its REPOSITORY column."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What the distribution API addresses: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> "Reference":
        return Reference.parse(f"{self.name}:{tag}")

    def with_digest(self, digest: str | None) -> "Reference":
        if digest is not None:
            validate_digest(digest)
        return replace(self, digest=digest)

    def without_digest(self) -> "Reference":
        return replace(self, digest=None, tag=self.tag or DEFAULT_TAG)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out
