"""The webhook's endpoints without the transport: bodies in, status and bodies out, metrics kept.

``server`` (HTTPS) calls these; benchmarks and tests can too, in-process. ``validate`` never raises
and never answers a uid-bearing review with anything but a well-formed AdmissionReview: an
unexpected failure is logged and becomes a denial coded 500 (fail closed), because an HTTP 500 would
hand the decision to the API server's ``failurePolicy``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from policies.kubernetes import POD_SPEC_PATHS
from stockade.admission.admit import RESULT_ALLOWED, RESULT_DENIED, RESULT_ERROR, Admitter, Outcome
from stockade.admission.metrics import CONTENT_TYPE, Counter, Gauge, Histogram, MetricsRegistry
from stockade.admission.review import ReviewError, error_body, parse_review, review_response

log = logging.getLogger("stockade.admission")

LOG_DECISIONS = ("all", "denied", "none")
JSON = "application/json"


class AdmissionService:
    """Reviews, health, readiness and metrics for one loaded policy."""

    def __init__(self, admitter: Admitter, *, trusted_root: Path | None = None, log_decisions: str = "all",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.admitter, self.trusted_root, self.clock = admitter, trusted_root, clock
        if log_decisions not in LOG_DECISIONS:
            raise ValueError(f"log_decisions must be one of {LOG_DECISIONS}")
        self.log_decisions = log_decisions
        self.draining = False
        policy = admitter.policy
        kinds = (*POD_SPEC_PATHS, "other")
        m = self.metrics = MetricsRegistry()
        self.decisions = m.add(Counter(
            "stockade_admission_decisions_total",
            "Admission reviews answered, by result (allowed, denied by the policy, or error: denied because "
            "verification or the review itself failed), workload kind and dry run.",
            ("result", "kind", "dry_run"),
            initial=[{"result": r, "kind": k, "dry_run": "false"}
                     for r in (RESULT_ALLOWED, RESULT_DENIED, RESULT_ERROR) for k in kinds]))
        self.latency = m.add(Histogram(
            "stockade_admission_review_duration_seconds",
            "Time from a review's arrival to its answer being ready, in seconds."))
        self.cache = m.add(Counter(
            "stockade_admission_verification_cache_total",
            "Signature verifications answered from the verification cache (hit) or by the registry (miss).",
            ("result",), initial=[{"result": "hit"}, {"result": "miss"}]))
        self.rejected = m.add(Counter(
            "stockade_admission_rejected_requests_total",
            "HTTP requests refused before review (not an AdmissionReview, too large, wrong path or method), "
            "by status code.", ("code",)))
        self.in_flight = m.add(Gauge("stockade_admission_reviews_in_flight", "Reviews being answered now."))
        info = m.add(Gauge("stockade_admission_policy_info", "The policy in force (value 1).", ("policy", "profile")))
        info.set(1, policy=policy.label, profile=policy.profile or "")

    # --- POST /validate ---------------------------------------------------------------------------

    def validate(self, body: bytes, started: float | None = None) -> tuple[int, bytes]:
        """``(HTTP status, JSON body)`` for one POSTed AdmissionReview."""
        started = self.clock() if started is None else started
        self.in_flight.inc(1)
        try:
            return self._validate(body, started)
        finally:
            self.in_flight.inc(-1)

    def _validate(self, body: bytes, started: float) -> tuple[int, bytes]:
        kind, dry_run, where = "other", False, ""
        try:
            req = parse_review(body)
        except ReviewError as exc:
            if exc.uid is None:
                self.reject(exc.status)
                return exc.status, error_body(exc.message)
            uid, outcome = exc.uid, Outcome(False, RESULT_ERROR, exc.status, f"stockade: {exc.message}")
        else:
            uid, dry_run = req.uid, req.dry_run
            kind = req.kind if req.kind in POD_SPEC_PATHS else "other"
            where = f"{req.operation} {req.kind} {req.namespace}/{req.name}"
            try:
                outcome = self.admitter.review(req, started=started)
            except Exception as exc:  # noqa: BLE001 - fail closed with a well-formed answer, never a 500
                log.exception("review %s of %s failed", uid, where)
                outcome = Outcome(False, RESULT_ERROR, 500,
                                  f"stockade: internal error while reviewing {where} ({type(exc).__name__}); "
                                  "denied (fail closed); the webhook's log has the details")
        answer = review_response(uid, allowed=outcome.allowed, code=outcome.code, message=outcome.message,
                                 warnings=outcome.warnings, audit_annotations=outcome.audit)
        elapsed = self.clock() - started
        self.decisions.inc(result=outcome.result, kind=kind, dry_run=str(dry_run).lower())
        self.latency.observe(elapsed)
        if outcome.cache_hits:
            self.cache.inc(outcome.cache_hits, result="hit")
        if outcome.cache_misses:
            self.cache.inc(outcome.cache_misses, result="miss")
        if self.log_decisions == "all" or (self.log_decisions == "denied" and not outcome.allowed):
            log.info("decision", extra={"fields": {
                "uid": uid, "request": where, "result": outcome.result, "dryRun": dry_run,
                "violations": outcome.violations, "ms": round(elapsed * 1000, 2),
                **({"message": outcome.message} if not outcome.allowed else {})}})
        return 200, answer

    def reject(self, status: int) -> None:
        """Count a request refused before review (the transport calls it for 404/405/411/413/415)."""
        self.rejected.inc(code=str(status))

    # --- health -----------------------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        """Ready when serving the loaded policy, not shutting down, and the trusted root is readable."""
        if self.draining:
            return False, "shutting down"
        if self.trusted_root is not None:
            try:
                with open(self.trusted_root, "rb") as fh:
                    fh.read(1)
            except OSError as exc:
                return False, f"trusted root {self.trusted_root} unreadable: {exc.strerror}"
        return True, f"ready: policy {self.admitter.policy.label}"

    def metrics_text(self) -> tuple[str, bytes]:
        return CONTENT_TYPE, self.metrics.render()

    def close(self) -> None:
        self.draining = True
        self.admitter.verifier.close()
