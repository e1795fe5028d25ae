"""Results of a verification: per signature, per verified digest, and the overall verdict.

The JSON form (``Verdict.to_json()``) is what ``stockade verify -o json`` prints and what the cache
stores, so it is documented in the README ("Signing and verification (CI)") and kept stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Where a signature was found.
VIA_REFERRERS_API = "referrers-api"
VIA_REFERRERS_TAG = "referrers-tag"
VIA_LEGACY_TAG = "legacy-tag"
VIA_FILE = "file"


@dataclass
class SignatureResult:
    """One signature (or bundle) and what its checks concluded."""

    kind: str  # "cosign-keyed" | "cosign-keyless" | "bundle-keyed" | "bundle-keyless"
    via: str  # VIA_*
    location: str  # the manifest or tag it was read from
    signer: dict[str, Any] = field(default_factory=dict)  # {"key_id"} or {"identity","issuer"}
    log: dict[str, Any] | None = None  # {"index", "integrated_time"} when verified
    reasons: list[str] = field(default_factory=list)  # empty when valid
    statement: dict[str, Any] | None = None  # the verified in-toto statement (attestations)

    @property
    def ok(self) -> bool:
        return not self.reasons

    def fail(self, reason: str) -> "SignatureResult":
        self.reasons.append(reason)
        return self

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, **self.signer}
        if self.log:
            out["log_index"] = self.log.get("index")
            out["integrated_time"] = self.log.get("integrated_time")
        out["found"] = {"via": self.via, "location": self.location}
        if self.statement is not None:
            out["statement"] = self.statement
        if self.reasons:
            out["reasons"] = list(self.reasons)
        return out


@dataclass
class TargetResult:
    """The signatures of one verified digest (an image manifest, an index, or both)."""

    digest: str
    media_type: str
    role: str  # "manifest" | "index" | "platform linux/amd64"
    signatures: list[SignatureResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # discovery problems (not per signature)

    @property
    def ok(self) -> bool:
        return any(s.ok for s in self.signatures)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "media_type": self.media_type,
            "role": self.role,
            "verified": self.ok,
            "signatures": [s.to_json() for s in self.signatures if s.ok],
            "invalid": [s.to_json() for s in self.signatures if not s.ok],
            "errors": list(self.errors),
        }


@dataclass
class Verdict:
    """The answer to "may this image be trusted under these requirements?"."""

    reference: str
    digest: str  # what the reference resolved to
    targets: list[TargetResult] = field(default_factory=list)
    tag_authority: dict[str, Any] | None = None  # TUF evidence, or {"error": ...}
    tag_ok: bool = True
    signatures_required: bool = True
    cached: bool = False
    expires: float | None = None  # epoch seconds until which a positive verdict may be cached

    @property
    def ok(self) -> bool:
        if not self.tag_ok:
            return False
        if not self.signatures_required:
            return True
        return bool(self.targets) and all(t.ok for t in self.targets)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "verified": self.ok,
            "targets": [t.to_json() for t in self.targets],
            "tuf": self.tag_authority,
            "signatures_required": self.signatures_required,
            "cached": self.cached,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Verdict":
        """Rebuild a (positive, cached) verdict; only valid signatures are kept in the cache."""
        targets = []
        for t in doc["targets"]:
            sigs = [SignatureResult(kind=s["kind"], via=s["found"]["via"], location=s["found"]["location"],
                                    signer={k: s[k] for k in ("key_id", "identity", "issuer") if k in s},
                                    log=({"index": s.get("log_index"), "integrated_time": s.get("integrated_time")}
                                         if "log_index" in s else None),
                                    statement=s.get("statement"))
                    for s in t["signatures"]]
            targets.append(TargetResult(t["digest"], t["media_type"], t["role"], sigs))
        return cls(reference=doc["reference"], digest=doc["digest"], targets=targets,
                   tag_authority=doc.get("tuf"), signatures_required=bool(doc.get("signatures_required", True)),
                   cached=True)
