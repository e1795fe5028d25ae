"""``evaluate(policy, document) -> Decision``: every rule, once, then modes and exceptions.

No rule short-circuits another: the decision lists everything wrong with a request so a person
fixes it in one go. Built-in controls and signature checks read the typed ``Subject``; CEL rules
read the document itself through one activation shared by all rules.
"""

from __future__ import annotations

import datetime
from typing import Any, Mapping

from policies.decision import Decision, ExpiredException, Finding, Result
from policies.document import Subject, parse
from policies.expressions import ExpressionEvalError
from policies.globs import matches_image
from policies.loader import Policy
from policies.model import ExceptionSpec


def _custom(policy: Policy, subject: Subject, out: list[Finding]) -> None:
    engine = policy.engine
    if not policy.rules or engine is None:
        return
    image = subject.image
    # CEL sees the document with the image name normalised, as the built-in rules do.
    document = {**subject.document, "image": {**(subject.document.get("image") or {}), "registry": image.registry,
                                              "repository": image.repository, "tag": image.tag,
                                              "digest": image.digest}}
    activation = engine.activation(document)
    for rule in policy.rules:
        spec = rule.spec
        try:
            ok = rule.expression.evaluate(activation)
            found: Any = False
        except ExpressionEvalError as exc:
            ok, found = False, f"evaluation error: {exc}"
        if not ok:
            out.append(Finding(spec.id, spec.path or "(document)", spec.message, found,
                               f"true: {spec.expression}", spec.fix or ""))


def findings(policy: Policy, subject: Subject) -> list[Finding]:
    """Every finding of every rule, before modes and exceptions."""
    out: list[Finding] = []
    for control in policy.controls:
        control.check(subject, out)
    _custom(policy, subject, out)
    return out


def _exceptions(policy: Policy, name: str, today: datetime.date
                ) -> tuple[dict[str, ExceptionSpec], tuple[ExpiredException, ...]]:
    active: dict[str, ExceptionSpec] = {}
    expired = []
    for exc in policy.exceptions:
        if not matches_image(exc.images, name):
            continue
        if exc.expires < today:
            expired.append(ExpiredException(exc.id, exc.rules, exc.expires.isoformat(), exc.reason))
            continue
        for rule in exc.rules:
            active.setdefault(rule, exc)
    return active, tuple(expired)


def decide(policy: Policy, subject: Subject, found: list[Finding], *,
           now: datetime.date | None = None, context: Mapping[str, Any] | None = None) -> Decision:
    """Project findings through per-rule modes and the exceptions in force on ``now`` (default today)."""
    today = now or datetime.date.today()
    active, expired = _exceptions(policy, subject.image.name, today) if policy.exceptions else ({}, ())
    custom_modes = {r.spec.id: r.spec.mode for r in policy.rules if r.spec.mode is not None}
    buckets: dict[str, list[Result]] = {"enforce": [], "warn": [], "audit": [], "exempt": []}
    for f in found:
        mode = (custom_modes.get(f.rule) or policy.mode_of(f.rule)).value
        exc = active.get(f.rule)
        if exc is not None:
            buckets["exempt"].append(Result(f, mode, exc.id, exc.reason, exc.expires.isoformat()))
        else:
            buckets[mode].append(Result(f, mode))
    ctx = dict(context if context is not None else subject.document.get("context") or {})
    return Decision(not buckets["enforce"], policy.label, policy.profile, subject.image.reference,
                    tuple(buckets["enforce"]), tuple(buckets["warn"]), tuple(buckets["audit"]),
                    tuple(buckets["exempt"]), expired, ctx)


def evaluate(policy: Policy, document: Mapping[str, Any], *, now: datetime.date | None = None) -> Decision:
    """Evaluate one input document (see ``input-document.schema.json``) against ``policy``.

    Raises ``InputDocumentError`` (exit 2) when the document does not have the published shape.
    """
    subject = parse(document)
    return decide(policy, subject, findings(policy, subject), now=now)
