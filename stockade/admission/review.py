"""Kubernetes ``AdmissionReview`` v1: reading a request, writing a response. No I/O, no policy.

Two kinds of bad input, answered differently (README "Kubernetes admission webhook"):

* an envelope that is not an ``admission.k8s.io/v1`` ``AdmissionReview`` with a ``request`` and a
  ``uid`` cannot be answered in kind, so it is an HTTP 4xx with a JSON ``{"error": …}`` body;
* once the ``uid`` is known, every other problem (no ``object``, a malformed ``kind``) is answered
  as a well-formed review that denies, because the API server only reads answers that echo the uid.

The API server itself never sends a body over 3 MiB (its request limit), so neither do we accept one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_WARNING_CHARS = 120  # the API server advises it; longer ones may be cut at 256
_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class ReviewError(Exception):
    """A review that cannot be evaluated. With ``uid`` the answer is a denying review, else HTTP ``status``."""

    def __init__(self, status: int, message: str, uid: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.uid = status, message, uid


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """What the webhook needs from ``request``; ``object`` is the workload as the API server sent it."""

    uid: str
    kind: str                      # request.kind.kind: Pod, Deployment, …
    group: str
    resource: str                  # request.resource.resource: pods, deployments, …
    sub_resource: str              # "" or ephemeralcontainers, status, …
    operation: str                 # CREATE, UPDATE, DELETE, CONNECT
    namespace: str
    name: str
    object: Any
    old_object: Any
    dry_run: bool
    username: str


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_review(body: bytes) -> ReviewRequest:
    """The request inside an AdmissionReview body; raises ``ReviewError`` for every malformed form."""
    try:
        doc = json.loads(body.decode("utf-8"))  # strictly UTF-8: json.loads(bytes) would guess UTF-16/32
    except UnicodeDecodeError:
        raise ReviewError(400, "the body is not UTF-8 JSON") from None
    except ValueError as exc:
        raise ReviewError(400, f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise ReviewError(400, "the body is not JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise ReviewError(400, f"expected a JSON object ({KIND}), got {type(doc).__name__}")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise ReviewError(400, f"expected apiVersion {API_VERSION} kind {KIND}, got apiVersion "
                               f"{str(doc.get('apiVersion'))[:64]!r} kind {str(doc.get('kind'))[:64]!r} "
                               "(set admissionReviewVersions: [v1] in the webhook configuration)")
    request = doc.get("request")
    if not isinstance(request, dict):
        raise ReviewError(400, f"the {KIND} has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not _UID.match(uid):
        raise ReviewError(400, "request.uid is missing or not a uid (1-128 characters of A-Z a-z 0-9 . _ : -)")
    kind = request.get("kind")
    if not isinstance(kind, Mapping) or not isinstance(kind.get("kind"), str) or not kind["kind"]:
        raise ReviewError(400, "request.kind.kind is missing", uid)
    resource = request.get("resource")
    resource = resource if isinstance(resource, Mapping) else {}
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise ReviewError(400, f"request.operation {str(operation)[:32]!r} is not CREATE, UPDATE, DELETE or CONNECT",
                          uid)
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ReviewError(400, "request.dryRun must be true or false", uid)
    user = request.get("userInfo")
    return ReviewRequest(
        uid=uid, kind=kind["kind"], group=_text(kind.get("group")), resource=_text(resource.get("resource")),
        sub_resource=_text(request.get("subResource")), operation=operation,
        namespace=_text(request.get("namespace")), name=_text(request.get("name")),
        object=request.get("object"), old_object=request.get("oldObject"), dry_run=dry_run,
        username=_text(user.get("username")) if isinstance(user, Mapping) else "")


def short_warning(text: str) -> str:
    """One warning line of at most ``MAX_WARNING_CHARS`` characters (cut with an ellipsis)."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_WARNING_CHARS else text[:MAX_WARNING_CHARS - 1] + "…"


def review_response(uid: str, *, allowed: bool, code: int = 200, message: str = "",
                    warnings: list[str] | tuple[str, ...] = (),
                    audit_annotations: Mapping[str, str] | None = None) -> bytes:
    """The AdmissionReview answering ``uid`` (compact JSON, ready to send)."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        reason = {400: "BadRequest", 403: "Forbidden"}.get(code, "InternalError")
        response["status"] = {"code": code, "reason": reason, "message": message}
    elif message:
        response["status"] = {"code": 200, "message": message}
    if warnings:
        response["warnings"] = [short_warning(w) for w in warnings]
    if audit_annotations:
        response["auditAnnotations"] = dict(audit_annotations)
    return json.dumps({"apiVersion": API_VERSION, "kind": KIND, "response": response},
                      separators=(",", ":"), ensure_ascii=False).encode()


def error_body(message: str) -> bytes:
    """The JSON body of a 4xx answer to something that is not a reviewable AdmissionReview."""
    return json.dumps({"error": message}, separators=(",", ":")).encode()
