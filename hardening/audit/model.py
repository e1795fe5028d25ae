"""The audit's data model: check metadata, targets, verdicts and results.

Kept apart from I/O (as python-tuf keeps its metadata model apart from its fetchers) so the
reporters, the runner and the tests share one vocabulary. Every result names its check, its target
and its status; a check that could not decide says SKIP or ERROR with the reason, never PASS.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping


class Severity(enum.IntEnum):
    """How bad a failure is; the order is the order of ``--fail-on``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected one of: "
                             f"{', '.join(s.label for s in cls)})") from None


class Status(str, enum.Enum):
    """What a check concluded about one target."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"  # not applicable here, or its input does not exist (the reason says which)
    ERROR = "ERROR"  # the check could not read what it needs (the reason says what)


DOMAINS = ("host", "engine", "files", "images", "containers", "operations")
# The target kind each domain's checks run against: once per host, or once per image / container.
DOMAIN_TARGET = {"host": "host", "engine": "engine", "files": "host", "images": "image",
                 "containers": "container", "operations": "engine"}


@dataclass(frozen=True)
class Check:
    """One check's metadata, as published (JSON, SARIF rules, JUnit, docs)."""

    id: str
    title: str
    domain: str
    severity: Severity
    level: int  # CIS profile level: 1 (practical baseline) or 2 (defence in depth)
    automated: bool  # False: the evidence needs a person's judgement (CIS "Manual")
    rationale: str
    remediation: str
    snippet: str  # configuration or command that fixes it
    impact: str
    refs: Mapping[str, str]  # benchmark name -> section ID, e.g. {"cis-docker-1.6.0": "5.5"}
    impl: str  # name of the implementing function (the check ID itself, or a shared kind)
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target_kind(self) -> str:
        return DOMAIN_TARGET[self.domain]


@dataclass(frozen=True)
class Target:
    """What a result is about: the host, the engine, or one image or container."""

    kind: str  # host | engine | image | container
    id: str = ""
    name: str = ""

    @property
    def label(self) -> str:
        """``kind:name`` — the form ignore-file patterns match and reports show."""
        return f"{self.kind}:{self.name or self.id}" if (self.name or self.id) else self.kind


@dataclass(frozen=True)
class Evidence:
    """What was observed, where, and what was expected (secrets are never copied in)."""

    source: str  # file | sysctl | mountinfo | command | engine-config | image-config | inspect | layer
    locator: str  # a path, a sysctl name, a command line, a JSON pointer
    observed: str
    expected: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "locator": self.locator, "observed": self.observed,
                "expected": self.expected}


@dataclass(frozen=True)
class Verdict:
    """A check function's answer for one target."""

    status: Status
    message: str
    evidence: tuple[Evidence, ...] = ()
    location: str | None = None  # the offending file, when there is one


def passed(message: str, *evidence: Evidence, location: str | None = None) -> Verdict:
    return Verdict(Status.PASS, message, evidence, location)


def failed(message: str, *evidence: Evidence, location: str | None = None) -> Verdict:
    return Verdict(Status.FAIL, message, evidence, location)


class Skip(Exception):
    """Raised by a check that does not apply or whose input is absent; the message is the reason."""


class CheckError(Exception):
    """Raised by a check that could not read what it needs; the message is the reason."""


@dataclass(frozen=True)
class Suppression:
    """An ignore-file entry that silenced a failure (still reported, no longer gating)."""

    reason: str
    expires: str
    pattern: str


@dataclass(frozen=True)
class Result:
    """One check's outcome for one target, as every reporter receives it."""

    check: Check
    target: Target
    status: Status
    message: str
    evidence: tuple[Evidence, ...] = ()
    location: str | None = None
    suppression: Suppression | None = None

    @property
    def fingerprint(self) -> str:
        """Stable across runs while the check, target and location stay the same (SARIF dedup)."""
        key = "|".join((self.check.id, self.target.kind, self.target.name or self.target.id,
                        self.location or ""))
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    @property
    def is_finding(self) -> bool:
        """A failure that counts toward the exit code (not suppressed by the ignore file)."""
        return self.status is Status.FAIL and self.suppression is None
