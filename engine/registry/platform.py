"""Platforms (``linux/amd64``, ``linux/arm/v7``) and picking one manifest out of an index.

Names follow Go's GOOS/GOARCH as the OCI image-spec requires. The host's platform is the default
for ``--platform``. Index entries without a platform, or with ``unknown/unknown`` (build attestations
that BuildKit stores beside the images), are never chosen.
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from engine.errors import printable
from engine.registry.errors import VerificationError

if TYPE_CHECKING:
    from engine.registry.manifest import Descriptor

# uname -m -> (GOARCH, variant)
_MACHINES = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", ""), "arm64": ("arm64", ""),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"),
    "i386": ("386", ""), "i686": ("386", ""), "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""), "mips64": ("mips64", ""), "loongarch64": ("loong64", ""),
}
# Variants an architecture implies when none is written.
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


class PlatformError(VerificationError):
    """A malformed ``--platform`` value, or no manifest in an index for the wanted platform."""


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """``os/arch[/variant]`` as Docker's ``--platform`` takes it (``linux/arm64/v8``)."""
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise PlatformError(f"invalid platform {text!r}: expected os/arch or os/arch/variant, "
                                "e.g. linux/amd64 or linux/arm/v7")
        return cls(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else "")

    @classmethod
    def host(cls) -> "Platform":
        machine = _platform.machine().lower()
        arch, variant = _MACHINES.get(machine, (machine, ""))
        return cls(os="linux", architecture=arch, variant=variant)

    @classmethod
    def from_json(cls, obj: Any, where: str) -> "Platform":
        if not isinstance(obj, dict) or not isinstance(obj.get("os"), str) \
                or not isinstance(obj.get("architecture"), str):
            raise VerificationError(f"{where}: platform needs string os and architecture")
        variant = obj.get("variant", "")
        version = obj.get("os.version", "")
        if not isinstance(variant, str) or not isinstance(version, str):
            raise VerificationError(f"{where}: platform variant and os.version must be strings")
        return cls(os=obj["os"], architecture=obj["architecture"], variant=variant, os_version=version)

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out

    def _variant(self) -> str:
        return self.variant or _DEFAULT_VARIANT.get(self.architecture, "")

    def matches(self, other: "Platform") -> bool:
        """True when ``other`` (an index entry) can run where ``self`` is wanted."""
        if (self.os, self.architecture) != (other.os.lower(), other.architecture.lower()):
            return False
        return not self.variant or self._variant() == other._variant()

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def select_manifest(entries: Sequence["Descriptor"], wanted: Platform, *, where: str) -> "Descriptor":
    """The index entry for ``wanted``: an exact variant match first, else the first compatible one."""
    candidates = [(e, e.platform) for e in entries
                  if e.platform is not None and wanted.matches(e.platform)]
    if not candidates:
        offered = sorted({printable(str(e.platform)) for e in entries
                          if e.platform is not None and e.platform.os != "unknown"})
        raise PlatformError(f"{where}: no manifest for platform {wanted} "
                            f"(the index offers: {', '.join(offered) or 'none'})")
    for entry, entry_platform in candidates:
        if entry_platform._variant() == wanted._variant():
            return entry
    return candidates[0][0]
