"""Stockade's policy engine: one policy language for ``run``, CI and Kubernetes admission.

It evaluates plain JSON-like input documents (``input-document.schema.json``) and imports nothing
else of Stockade's. The public surface:

* ``resolve_policy(name_or_path)``, ``load_policy(path)``, ``builtin_policy(name)`` -> ``Policy``
* ``requirements_for(policy, image_reference)`` -> the signature requirements ``trust`` must verify
* ``harden(policy, document)`` -> ``Hardened`` (effective settings, what was filled, request violations)
* ``evaluate(policy, document, now=None)`` -> ``Decision`` (``allowed``, ``exit_code``, ``as_dict()``)
* ``policies.kubernetes.documents_from_manifests`` and ``policies.runline.document_from_run_args``
  build input documents from manifests and run lines (``policy check``)

CEL is imported only when a loaded policy has custom rules. The names above load on first use (PEP
562), so a caller that needs one small module (``policies.runflags`` for the run verb's flag values)
does not pay for the whole engine: ``stockade run`` answered from the admission cache loads none of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policies.loader import Policy
    from policies.signatures import SignatureRequirement

_EXPORTS = {
    "Decision": "decision", "Finding": "decision", "Result": "decision",
    "InputDocumentError": "errors", "PolicyError": "errors", "PolicyLoadError": "errors",
    "evaluate": "evaluation", "matches": "globs", "Applied": "effective", "Hardened": "effective", "harden": "effective",
    "split_reference": "imageref", "Policy": "loader", "builtin_policy": "loader", "load_policy": "loader",
    "load_policy_text": "loader", "resolve_policy": "loader", "IdentityRequirement": "signatures",
    "KeyRequirement": "signatures", "SignatureRequirement": "signatures", "TufRequirement": "signatures",
}

SCHEMA_FILE = "input-document.schema.json"


def requirements_for(policy: Policy, image_reference: str) -> list[SignatureRequirement]:
    """The signature requirements that apply to ``image_reference`` (every one must be satisfied).

    Pass them to ``trust``'s verifiers before evaluating; an empty list means the policy requires no
    signature for this image. Raises ``InputDocumentError`` for a malformed reference.
    """
    from policies.errors import InputDocumentError
    from policies.globs import matches_signed_image
    from policies.imageref import split_reference

    try:
        name = split_reference(image_reference).name
    except ValueError as exc:
        raise InputDocumentError("image.reference", str(exc)) from None
    return [r for r in policy.requirements if matches_signed_image(r.images, name)]


__all__ = [
    "Applied", "Decision", "Finding", "Hardened", "IdentityRequirement", "InputDocumentError", "KeyRequirement",
    "Policy", "PolicyError", "PolicyLoadError", "Result", "SCHEMA_FILE", "SignatureRequirement", "TufRequirement",
    "builtin_policy", "evaluate", "harden", "load_policy", "load_policy_text", "requirements_for",
    "resolve_policy",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    return getattr(importlib.import_module(f"policies.{module}"), name)
