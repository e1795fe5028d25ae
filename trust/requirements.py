"""What a verification must establish, as one value the CLI, the policy engine and the cache share.

A signature is acceptable when it satisfies *every* requirement given:

* it is signed by one of ``keys``, or its certificate matches one of ``identities`` (one authority
  suffices, as in policy-controller);
* with ``require_tlog``, its transparency-log evidence was verified;
* with ``check_reference``, its payload names the image's repository (containers/image's rule;
  cosign ignores the field);
* its payload, statement subject or bundle covers the image's digest (always).

``tuf`` is the seam for TUF trust on tags (``trust/tuf/``): any object with the
:class:`TagAuthority` protocol. When present, the tag's current digest must equal the TUF target's
digest in addition to the signature requirements (or instead of them, when no key or identity is
given). ``canonical()`` is the cache key's view of all of this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from trust.errors import RequirementsError
from trust.identity import IdentityMatcher
from trust.keys import PublicKey
from trust.trustroot import TrustedRoot


@dataclass(frozen=True)
class TagEvidence:
    """What a tag authority (TUF) established: the digest it vouches for, and until when."""

    digest: str
    expires: datetime | None
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TagAuthority(Protocol):
    """A source of truth for tag -> digest (TUF). Implemented in ``trust/tuf/``.

    ``resolve`` raises a StockadeError naming the problem (expired metadata, rollback, wrong root,
    unknown tag) with a stable ``reason`` code (``trust.tuf.errors``), which the verdict carries;
    ``cache_key`` identifies the authority (repository URL and pinned root hash).
    """

    def cache_key(self) -> str: ...

    def resolve(self, reference: Any, *, offline: bool) -> TagEvidence: ...


@dataclass(frozen=True)
class Requirements:
    """The requirements for one verification (see the module docstring)."""

    keys: tuple[PublicKey, ...] = ()
    identities: tuple[IdentityMatcher, ...] = ()
    trusted_root: TrustedRoot | None = None  # None: the public-good root, loaded when needed
    require_tlog: bool = False
    check_reference: bool = False
    ignore_sct: bool = False
    offline: bool = False
    tuf: TagAuthority | None = None

    def __post_init__(self) -> None:
        if not self.keys and not self.identities and self.tuf is None:
            raise RequirementsError("nothing to verify against: give --key, or "
                                    "--certificate-identity[-regexp] with "
                                    "--certificate-oidc-issuer[-regexp]")

    @property
    def wants_signatures(self) -> bool:
        return bool(self.keys or self.identities)

    def root(self) -> TrustedRoot:
        return self.trusted_root or TrustedRoot.default()

    def canonical(self) -> dict[str, Any]:
        """A deterministic description of the requirements (part of the cache key)."""
        return {
            "keys": sorted(k.key_id for k in self.keys),
            "identities": sorted((m.canonical() for m in self.identities),
                                 key=lambda d: json.dumps(d, sort_keys=True)),
            "require_tlog": self.require_tlog,
            "check_reference": self.check_reference,
            "ignore_sct": self.ignore_sct,
            "tuf": self.tuf.cache_key() if self.tuf is not None else None,
        }
