"""What an evaluation returns: every failed rule, projected through modes and exceptions.

As in Kubernetes' Pod Security admission, one evaluation feeds every mode: a finding of an
``enforce`` rule is a violation (the request is denied), of a ``warn`` rule a warning, of an
``audit`` rule an audit record; a finding an active exception covers is listed as exempted. Expired
exceptions that would have applied are inert and listed, so someone renews or removes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXIT_ALLOWED = 0
EXIT_DENIED = 1


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that does not hold for the input: where, what was found, what was expected, the fix."""

    rule: str
    path: str
    message: str
    found: Any = None
    expected: Any = None
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """A finding as the policy treats it."""

    finding: Finding
    mode: str
    exception: str | None = None
    exception_reason: str | None = None
    exception_expires: str | None = None

    def as_dict(self) -> dict[str, Any]:
        f = self.finding
        out: dict[str, Any] = {"rule": f.rule, "mode": self.mode, "path": f.path, "message": f.message,
                               "found": f.found, "expected": f.expected, "fix": f.fix}
        if self.exception:
            out.update(exception=self.exception, reason=self.exception_reason, expires=self.exception_expires)
        return out


@dataclass(frozen=True, slots=True)
class ExpiredException:
    id: str
    rules: tuple[str, ...]
    expires: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "rules": list(self.rules), "expires": self.expires, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one input document. ``exit_code``: 0 allowed, 1 denied."""

    allowed: bool
    policy: str
    profile: str | None
    image: str
    violations: tuple[Result, ...] = ()
    warnings: tuple[Result, ...] = ()
    audits: tuple[Result, ...] = ()
    exempted: tuple[Result, ...] = ()
    expired_exceptions: tuple[ExpiredException, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_ALLOWED if self.allowed else EXIT_DENIED

    @property
    def results(self) -> tuple[Result, ...]:
        return self.violations + self.warnings + self.audits + self.exempted

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": "allow" if self.allowed else "deny",
            "allowed": self.allowed,
            "policy": self.policy,
            "profile": self.profile,
            "image": self.image,
            "violations": [r.as_dict() for r in self.violations],
            "warnings": [r.as_dict() for r in self.warnings],
            "audit": [r.as_dict() for r in self.audits],
            "exempted": [r.as_dict() for r in self.exempted],
            "expiredExceptions": [e.as_dict() for e in self.expired_exceptions],
            "context": self.context,
        }

    def summary(self) -> str:
        """One line per violation, as ``run`` prints a refusal."""
        lines = [f"denied by policy {self.policy}: {len(self.violations)} violation(s)" if not self.allowed
                 else f"allowed by policy {self.policy}"]
        for r in self.violations:
            f = r.finding
            lines.append(f"  [{f.rule}] {f.message} ({f.path}: found {_show(f.found)}, expected {_show(f.expected)})"
                         + (f"; fix: {f.fix}" if f.fix else ""))
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
