"""The policy file's data model: frozen dataclasses that *are* the schema.

``typed.Converter`` builds these from YAML (every field checked, unknown fields refused) and
``typed.to_plain`` turns them back into YAML for ``policy show``. A field left ``None`` is
"not constrained by this policy": when a policy names a profile, the profile supplies it
(``loader.overlay``). The polarity of every runtime field follows Kubernetes' Pod Security
Standards: the value is what a container *may* have (``privileged: false`` forbids privileged
containers; ``readOnlyRootFilesystem: true`` requires a read-only root).
"""

from __future__ import annotations

import datetime
import enum
import re
from dataclasses import dataclass, field
from typing import Annotated, Iterator

from policies.globs import check_glob

API_VERSION = "stockade.dev/v1"
KIND = "Policy"


class Mode(str, enum.Enum):
    """What a failed rule does: deny (enforce), or let it through with a warning or an audit note."""

    ENFORCE = "enforce"
    WARN = "warn"
    AUDIT = "audit"


class SeccompType(str, enum.Enum):
    RUNTIME_DEFAULT = "RuntimeDefault"
    LOCALHOST = "Localhost"
    UNCONFINED = "Unconfined"


AppArmorType = SeccompType  # Kubernetes' AppArmorProfileType has the same three values


class ProcMountType(str, enum.Enum):
    DEFAULT = "Default"
    UNMASKED = "Unmasked"


class TlogMode(str, enum.Enum):
    REQUIRED = "required"
    OPTIONAL = "optional"


class Resource(str, enum.Enum):
    MEMORY = "memory"
    CPUS = "cpus"
    PIDS = "pids"


# ---------------------------------------------------------------------------------------- parsers

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CAP = re.compile(r"^[A-Z][A-Z0-9_]*$")
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1024**2, "mb": 1000**2,
          "mi": 1024**2, "mib": 1024**2, "g": 1024**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
          "t": 1024**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_bytes(value: object) -> int:
    """``512Mi``, ``4Gi`` (Kubernetes), ``1g``, ``512m`` (Docker: binary units), or a number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512Mi, found a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if not isinstance(value, str):
        raise ValueError("expected a size such as 512Mi")
    m = _QUANTITY.match(value)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"{value!r} is not a size (use e.g. 512Mi, 4Gi, 1g or a number of bytes)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_cpus(value: object) -> float:
    """``2``, ``0.5`` (Docker --cpus) or ``500m`` (Kubernetes millicores)."""
    if isinstance(value, bool):
        raise ValueError("expected a CPU count such as 0.5 or 500m")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a CPU count cannot be negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text[:-1]) / 1000 if text.endswith("m") else float(text)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a CPU count (use e.g. 2, 0.5 or 500m)")


def _non_negative(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a whole number >= 0")
    return value


def _glob(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a glob string")
    return check_glob(value)


def _regexp(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a regular expression string")
    try:
        re.compile(value, re.ASCII)  # as policies.signatures matches it (Go's classes)
    except (re.error, ValueError) as exc:  # ValueError: (?u), which Go has no use for either
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def _sha256(value: object) -> str:
    text = value.removeprefix("sha256:") if isinstance(value, str) else ""
    if not _SHA256.match(text):
        raise ValueError("expected 64 lowercase hex digits (the file's sha256)")
    return text


def _capability(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a capability name such as NET_BIND_SERVICE")
    name = value.upper().removeprefix("CAP_")
    if not _CAP.match(name):
        raise ValueError(f"{value!r} is not a capability name")
    return name


def _rule_id(value: object) -> str:
    if not isinstance(value, str) or not _RULE_ID.match(value):
        raise ValueError("expected an id of lowercase letters, digits, '.', '_' or '-' (at most 63)")
    return value


def _absolute_path(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError("expected an absolute path")
    if "\x00" in value:
        raise ValueError("a path cannot contain NUL")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value


Glob = Annotated[str, _glob]
Regexp = Annotated[str, _regexp]
Sha256 = Annotated[str, _sha256]
Capability = Annotated[str, _capability]
RuleId = Annotated[str, _rule_id]
AbsPath = Annotated[str, _absolute_path]
Text = Annotated[str, _text]
Bytes = Annotated[int, parse_bytes]
Cpus = Annotated[float, parse_cpus]
Count = Annotated[int, _non_negative]


# --------------------------------------------------------------------------------------- sections

@dataclass(frozen=True, slots=True)
class Metadata:
    name: RuleId
    revision: Count | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ImagesSpec:
    """Which images may run at all, before any signature is looked at."""

    allowed_registries: tuple[Glob, ...] | None = None     # matched against ``registry``
    allowed_repositories: tuple[Glob, ...] | None = None   # matched against ``registry/repository``
    require_digest: bool | None = None                     # the reference must be pinned (@sha256:…)
    forbid_latest: bool | None = None                      # no ``:latest``, explicit or implied


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A public key: a PEM file (relative to the policy file) or the PEM inline."""

    path: str | None = None
    pem: str | None = None
    # Filled by the loader: the PEM text and the hex SHA-256 of the DER SubjectPublicKeyInfo.
    resolved_pem: str | None = field(default=None, metadata={"internal": True})
    key_id: str | None = field(default=None, metadata={"internal": True})

    def problems(self) -> Iterator[tuple[str | None, str]]:
        if (self.path is None) == (self.pem is None):
            yield None, "give exactly one of 'path' or 'pem'"


@dataclass(frozen=True, slots=True)
class Identity:
    """A keyless signer: the certificate's subject (SAN) and the OIDC issuer, exact or regexp."""

    subject: str | None = None
    subject_regexp: Regexp | None = field(default=None, metadata={"key": "subjectRegExp"})
    issuer: str | None = None
    issuer_regexp: Regexp | None = field(default=None, metadata={"key": "issuerRegExp"})

    def problems(self) -> Iterator[tuple[str | None, str]]:
        if (self.subject is None) == (self.subject_regexp is None):
            yield None, "give exactly one of 'subject' or 'subjectRegExp'"
        if (self.issuer is None) == (self.issuer_regexp is None):
            yield None, "give exactly one of 'issuer' or 'issuerRegExp'"


@dataclass(frozen=True, slots=True)
class TufSpec:
    """The tag must resolve, through this TUF repository, to the digest being run."""

    url: Text
    root: Text                       # the pinned root.json, relative to the policy file
    root_sha256: Sha256 | None = None  # filled by the loader from the file when not given


@dataclass(frozen=True, slots=True)
class SignatureSpec:
    """Images matching ``images`` need ``threshold`` distinct listed signers (keys or identities).

    Every matching entry must be satisfied (AND across entries), any listed signer counts (OR within
    an entry), as in sigstore's policy-controller.
    """

    images: tuple[Glob, ...]
    name: RuleId | None = None
    keys: tuple[KeyRef, ...] = ()
    identities: tuple[Identity, ...] = ()
    transparency_log: TlogMode = TlogMode.OPTIONAL
    threshold: int = 1
    tuf: TufSpec | None = None

    def problems(self) -> Iterator[tuple[str | None, str]]:
        if not self.images:
            yield "images", "list at least one image glob"
        if not (self.keys or self.identities or self.tuf):
            yield None, "give at least one of 'keys', 'identities' or 'tuf'"
        if self.threshold < 1 or self.threshold > max(1, len(self.keys) + len(self.identities)):
            yield "threshold", "must be between 1 and the number of keys and identities listed"


@dataclass(frozen=True, slots=True)
class HostNamespaces:
    """``false`` forbids sharing that namespace with the host; ``true`` allows it."""

    network: bool | None = None
    pid: bool | None = None
    ipc: bool | None = None
    uts: bool | None = None
    user: bool | None = None
    cgroup: bool | None = None


@dataclass(frozen=True, slots=True)
class CapabilitiesSpec:
    drop: tuple[Capability, ...] | None = None        # must all be dropped (``ALL`` for all)
    allow_add: tuple[Capability, ...] | None = None   # the only capabilities a container may add


@dataclass(frozen=True, slots=True)
class LocalhostProfile:
    path: AbsPath
    sha256: Sha256


@dataclass(frozen=True, slots=True)
class SeccompSpec:
    allowed: tuple[SeccompType, ...] | None = None
    required: bool | None = None   # false: an unset profile passes (Pod Security "baseline")
    # With Localhost allowed: the only profiles that may be used, each pinned by its sha256.
    profiles: tuple[LocalhostProfile, ...] | None = None


@dataclass(frozen=True, slots=True)
class BindRule:
    source_prefix: AbsPath
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class MountsSpec:
    tmpfs: tuple[Glob, ...] | None = None        # allowed tmpfs destinations
    bind: tuple[BindRule, ...] | None = None     # allowed bind sources; [] forbids bind mounts
    volumes: tuple[str, ...] | None = None       # allowed volume kinds (``local``, ``configMap``, …)


@dataclass(frozen=True, slots=True)
class SysctlsSpec:
    allowed: tuple[str, ...] | None = None   # the only sysctl names a pod may set


@dataclass(frozen=True, slots=True)
class AppArmorSpec:
    allowed: tuple[AppArmorType, ...] | None = None   # an unset profile always passes (the runtime's default)


@dataclass(frozen=True, slots=True)
class SELinuxSpec:
    """As Pod Security "baseline": an unset (or empty) type always passes; ``user``/``role`` false
    forbids setting them."""

    allowed_types: tuple[str, ...] | None = None
    user: bool | None = None
    role: bool | None = None


@dataclass(frozen=True, slots=True)
class ProcMountSpec:
    allowed: tuple[ProcMountType, ...] | None = None   # an unset procMount is Default


@dataclass(frozen=True, slots=True)
class ResourceValues:
    memory: Bytes | None = None
    cpus: Cpus | None = None
    pids: Count | None = None


@dataclass(frozen=True, slots=True)
class ResourcesSpec:
    required: tuple[Resource, ...] | None = None
    max: ResourceValues | None = None
    defaults: ResourceValues | None = None   # what ``run`` sets when the user gives nothing


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    run_as_non_root: bool | None = None
    minimum_uid: Count | None = None
    read_only_root_filesystem: bool | None = None
    privileged: bool | None = None
    allow_privilege_escalation: bool | None = None
    host_namespaces: HostNamespaces | None = None
    capabilities: CapabilitiesSpec | None = None
    seccomp: SeccompSpec | None = None
    mounts: MountsSpec | None = None
    resources: ResourcesSpec | None = None
    # Kubernetes-only settings (Pod Security "baseline"); ``stockade run`` sets none of them.
    host_ports: bool | None = None            # false: no container port may bind a host port
    host_process: bool | None = None          # false: no Windows HostProcess container
    sysctls: SysctlsSpec | None = None
    app_armor: AppArmorSpec | None = None
    se_linux: SELinuxSpec | None = None
    proc_mount: ProcMountSpec | None = None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A custom rule: a CEL expression over the input document that must be true."""

    id: RuleId
    expression: Text
    message: Text
    mode: Mode | None = None
    path: str | None = None      # where in the input the problem is, for reports
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class ExceptionSpec:
    """Exempts matching images from some rules until ``expires`` (then it is inert and reported)."""

    id: Text                  # a ticket id is fine: EXC-42
    rules: tuple[str, ...]
    images: tuple[Glob, ...]
    reason: Text
    expires: datetime.date

    def problems(self) -> Iterator[tuple[str | None, str]]:
        if not self.rules:
            yield "rules", "list at least one rule id"
        if not self.images:
            yield "images", "list at least one image glob"


@dataclass(frozen=True, slots=True)
class PolicySpec:
    profile: str | None = None
    mode: Mode | None = None
    modes: dict[str, Mode] | None = None          # per built-in rule: ``runtime.readOnlyRootFilesystem: warn``
    images: ImagesSpec | None = None
    signatures: tuple[SignatureSpec, ...] = ()
    runtime: RuntimeSpec | None = None
    rules: tuple[RuleSpec, ...] = ()
    exceptions: tuple[ExceptionSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """Exactly what a policy file holds (before its profile is applied)."""

    api_version: str
    kind: str
    metadata: Metadata
    spec: PolicySpec = field(default_factory=PolicySpec)

    def problems(self) -> Iterator[tuple[str | None, str]]:
        if self.api_version != API_VERSION:
            yield "apiVersion", f"must be {API_VERSION!r}, found {self.api_version!r}"
        if self.kind != KIND:
            yield "kind", f"must be {KIND!r}, found {self.kind!r}"
