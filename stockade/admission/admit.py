"""One admission review -> one answer: the same translation, verifiers and evaluator as ``policy check``.

``policies.kubernetes.documents_from_object`` turns the workload into one input document per
container (init, regular and ephemeral); each image the policy wants signed is verified once per
review (``verifier``); every container is evaluated; and the decisions become the review's answer,
as Pod Security admission projects one evaluation onto enforce, warn and audit:

* any violation at ``enforce`` denies (403) and ``status.message`` lists every violation of every
  container, with the manifest field and the fix;
* ``warn`` findings become ``warnings`` (one line each, at most 120 characters), also when denied;
* ``audit`` findings, exemptions and expired exceptions become ``auditAnnotations`` (JSON values).

Nothing is evaluated for what cannot run a container: DELETE and CONNECT, kinds without a pod
template, subresources other than ``pods/ephemeralcontainers`` and ``pods/resize`` (which adds a
container, or changes a running one's resource limits in place; ``pods/status`` is the kubelet
reporting, not a new container), and UPDATEs that leave the pod template as it was (relabelling a Pod
admitted before the policy tightened must keep working; new Pods are reviewed on their own CREATE).

Any failure while reviewing is a denial that says so (fail closed): a verification error or an
exceeded deadline is a policy violation with its reason; anything unexpected is a 500-coded denial,
never an HTTP 500, which the API server would hand to its ``failurePolicy``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from policies import InputDocumentError, PolicyError, evaluate, requirements_for
from policies.kubernetes import POD_SPEC_PATHS, documents_from_object
from stockade.admission.review import ReviewRequest

if TYPE_CHECKING:
    from policies import Decision, Policy, Result
    from policies.sources import Located
    from stockade.admission.verifier import ImageVerifier
    from stockade.verification import ImageFacts

log = logging.getLogger("stockade.admission")

RESULT_ALLOWED, RESULT_DENIED, RESULT_ERROR = "allowed", "denied", "error"
EVALUATED_OPERATIONS = ("CREATE", "UPDATE")
EVALUATED_SUBRESOURCES = ("", "ephemeralcontainers", "resize")
MAX_ANNOTATION_CHARS = 10_000
TOCTOU_REMEDY = ("reference images by digest (IMAGE@sha256:…) so nodes run exactly what was verified; "
                 "a tag can move after admission")


@dataclass
class Outcome:
    """The answer to one review, and how it is counted (``result``: allowed, denied or error)."""

    allowed: bool
    result: str
    code: int = 200
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    audit: dict[str, str] = field(default_factory=dict)
    violations: int = 0
    cache_hits: int = 0
    cache_misses: int = 0


def _annotation(items: list[dict[str, Any]]) -> str:
    text = json.dumps(items, separators=(",", ":"), ensure_ascii=False)
    if len(text) <= MAX_ANNOTATION_CHARS:
        return text
    while items and len(text) > MAX_ANNOTATION_CHARS:
        items = items[:len(items) // 2]
        text = json.dumps(items + [{"truncated": True}], separators=(",", ":"), ensure_ascii=False)
    return text


def pod_spec(obj: Any, kind: str) -> Any:
    """The pod spec (or template spec) of a workload object, None when absent."""
    return _at(obj, POD_SPEC_PATHS[kind])


def pod_annotations(obj: Any, kind: str) -> Any:
    """The pod's (or template's) annotations, None when absent: the policy judges AppArmor's legacy
    annotations there, so a change to them alone changes what the pods run."""
    return _at(obj, (*POD_SPEC_PATHS[kind][:-1], "metadata", "annotations"))


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    value = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _object_name(req: ReviewRequest) -> str:
    """The object's name; a Pod a controller is creating has only ``generateName`` (``web-5d8f7-``)."""
    if req.name:
        return req.name
    meta = req.object.get("metadata") if isinstance(req.object, dict) else None
    generated = meta.get("generateName") if isinstance(meta, dict) else None
    return f"{generated}*" if isinstance(generated, str) and generated else "(unnamed)"


class Admitter:
    """Reviews requests against one loaded policy; thread-safe (it keeps no per-request state)."""

    def __init__(self, policy: Policy, verifier: ImageVerifier, *, deadline: float = 8.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy, self.verifier, self.deadline, self.clock = policy, verifier, deadline, clock

    # --- the review -------------------------------------------------------------------------------

    def review(self, req: ReviewRequest, *, started: float | None = None) -> Outcome:
        """The answer to ``req``; ``started`` (``clock()`` when the request arrived) anchors the deadline."""
        started = self.clock() if started is None else started
        skip = self._skip_reason(req)
        if skip is not None:
            return Outcome(True, RESULT_ALLOWED, audit={"skipped": skip})
        where = f"{req.kind} {req.namespace + '/' if req.namespace else ''}{_object_name(req)}"
        if not isinstance(req.object, dict):
            return Outcome(False, RESULT_ERROR, 400, f"stockade: {where}: request.object is missing or not an object")
        try:
            located = documents_from_object(req.object, req.kind, where)
        except PolicyError as exc:
            return Outcome(False, RESULT_ERROR, 400, f"stockade: cannot read {exc}")
        for item in located:
            item.document["context"].update(kind="admission", operation=req.operation, dryRun=req.dry_run,
                                            username=req.username, namespace=req.namespace)
        facts = self._verify(located, req.dry_run, started)
        return self._answer(where, located, facts)

    @staticmethod
    def _skip_reason(req: ReviewRequest) -> str | None:
        if req.operation not in EVALUATED_OPERATIONS:
            return f"{req.operation} runs no container"
        if req.kind not in POD_SPEC_PATHS:
            return f"kind {req.kind} has no pod template"
        if req.sub_resource not in EVALUATED_SUBRESOURCES:
            return f"subresource {req.resource}/{req.sub_resource} starts no container"
        if req.operation == "UPDATE" and isinstance(req.old_object, dict):
            spec = pod_spec(req.object, req.kind)
            if isinstance(spec, dict) and spec == pod_spec(req.old_object, req.kind) and \
                    pod_annotations(req.object, req.kind) == pod_annotations(req.old_object, req.kind):
                return "UPDATE leaves the pod template unchanged"
        return None

    def _verify(self, located: list[Located], dry_run: bool, started: float) -> dict[str, ImageFacts]:
        """Verify each distinct image the policy wants signed; fill the documents' image facts."""
        flights = {}
        for item in located:
            reference = item.document["image"]["reference"]
            if reference in flights:
                continue
            try:
                requirements = requirements_for(self.policy, reference)
            except InputDocumentError:
                continue  # the evaluator reports the malformed reference for this container
            if requirements:
                flights[reference] = self.verifier.submit(reference, requirements, dry_run=dry_run)
        if not flights:
            return {}
        facts = self.verifier.collect(flights, self.deadline - (self.clock() - started))
        for item in located:
            image = item.document["image"]
            found = facts.get(image["reference"])
            if found is not None:
                image.update(found.as_image())
        return facts

    # --- the answer -------------------------------------------------------------------------------

    def _evaluate(self, item: Located) -> Decision | str:
        try:
            return evaluate(self.policy, item.document)
        except InputDocumentError as exc:
            return f"{exc.path}: {exc.problem}"

    def _answer(self, where: str, located: list[Located], facts: dict[str, ImageFacts]) -> Outcome:
        denials: list[str] = []
        warnings: list[str] = []
        audits: list[dict[str, Any]] = []
        exempted: list[dict[str, Any]] = []
        expired: list[dict[str, Any]] = []
        by_tag: dict[str, str] = {}
        failed_closed = any(f.error for f in facts.values())
        for item in located:
            ctx = item.document["context"]
            who = f"{ctx['containerType']}[{ctx['container']}]"
            decision = self._evaluate(item)
            if isinstance(decision, str):
                denials.append(f"{who}: [input] {decision}")
                continue
            for r in decision.violations:
                denials.append(f"{who}: {self._line(item, r)}")
            warnings += [f"{who}: [{r.finding.rule}] {r.finding.message}" for r in decision.warnings]
            audits += [self._record(item, who, r) for r in decision.audits]
            exempted += [{**self._record(item, who, r), "exception": r.exception, "expires": r.exception_expires}
                         for r in decision.exempted]
            expired += [{"container": who, **e.as_dict()} for e in decision.expired_exceptions]
            image = item.document["image"]
            if image.get("digest") and "@" not in image["reference"]:
                by_tag[image["reference"]] = image["digest"]
        audit = {"policy": self.policy.label}
        for key, items in (("audit", audits), ("exempted", exempted), ("expired-exceptions", expired)):
            if items:
                audit[key] = _annotation(items)
        if by_tag:
            audit["verified-tags"] = _annotation([{"image": i, "digest": d} for i, d in sorted(by_tag.items())])
        outcome = Outcome(not denials, RESULT_ALLOWED, warnings=warnings, audit=audit, violations=len(denials),
                          cache_hits=sum(f.cache_hits for f in facts.values()),
                          cache_misses=sum(f.cache_misses for f in facts.values()))
        tagged = any("@" not in reference for reference in facts)
        if not denials:
            outcome.warnings += [f"{i} verified as {d[:19]}…: pin the digest, a tag can move after admission"
                                 for i, d in sorted(by_tag.items())]
            return outcome
        outcome.code = 403
        outcome.result = RESULT_ERROR if failed_closed else RESULT_DENIED
        outcome.message = (f"stockade policy {self.policy.label} denied {where}: {len(denials)} violation(s)\n"
                           + "\n".join(f"- {d}" for d in denials))
        if tagged:
            outcome.message += f"\n(signatures are checked at the digest a tag points to now: {TOCTOU_REMEDY})"
        return outcome

    @staticmethod
    def _field(item: Located, r: Result) -> str:
        return item.source.locate(r.finding.path)[1] or r.finding.path

    def _line(self, item: Located, r: Result) -> str:
        f = r.finding
        return f"[{f.rule}] {f.message} ({self._field(item, r)})" + (f"; fix: {f.fix}" if f.fix else "")

    def _record(self, item: Located, who: str, r: Result) -> dict[str, Any]:
        return {"container": who, "rule": r.finding.rule, "message": r.finding.message, "field": self._field(item, r)}
