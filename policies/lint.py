r"""``stockade policy lint``: beyond loading (which already refuses every error), the risky but valid.

Warnings: expired exceptions (inert), exceptions expiring within 30 days, identity and issuer
regular expressions that are not anchored at both ends (they are searched, as cosign and
policy-controller do, so ``github\.com/org`` also accepts ``evil.test/github.com/org``), keyless
signers without a transparency-log requirement, runtime settings that loosen the profile underneath,
and a policy that requires no signature at all.
"""

from __future__ import annotations

import datetime
import re

from policies.loader import Policy, builtin_policy
from policies.model import PolicyFile, RuntimeSpec
from policies.typed import Converter
from policies.yamlsource import load_documents

_STRICT = (("run_as_non_root", "runAsNonRoot", True), ("read_only_root_filesystem", "readOnlyRootFilesystem", True),
           ("privileged", "privileged", False), ("allow_privilege_escalation", "allowPrivilegeEscalation", False),
           ("host_ports", "hostPorts", False), ("host_process", "hostProcess", False))


def _weakened(own: RuntimeSpec | None, base: RuntimeSpec | None, profile: str) -> list[str]:
    if own is None or base is None:
        return []
    out = []
    for attr, key, strict in _STRICT:
        if getattr(base, attr) == strict and getattr(own, attr) == (not strict):
            out.append(f"spec.runtime.{key}: {str(not strict).lower()} loosens profile {profile} "
                       f"({str(strict).lower()}); say why in metadata.description or use an exception")
    return out


_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")


def anchored(pattern: str) -> bool:
    """Whether a searched pattern can only match a whole value: ``^`` first (after inline flags other
    than ``(?m)``, which makes it a line anchor), an unescaped ``$`` last, and no ``|`` outside a
    group (``^a|b$`` means ``^a`` or ``b$``)."""
    flags = _FLAGS.match(pattern)
    body = pattern[flags.end():] if flags else pattern
    if (flags and "m" in flags.group()) or not body.startswith("^") or not body.endswith("$"):
        return False
    depth, escaped, in_class = 0, False, False
    for char in body[:-1]:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and depth == 0:
            return False
    return not escaped  # a final "\\$" is a literal dollar sign


def lint(policy: Policy, text: str, file: str, *, today: datetime.date | None = None) -> list[str]:
    """Warnings for an already loaded policy and its text."""
    today = today or datetime.date.today()
    warnings = []
    for exc in policy.exceptions:
        if exc.expires < today:
            warnings.append(f"exception {exc.id} expired on {exc.expires}: it is inert; renew or remove it")
        elif exc.expires <= today + datetime.timedelta(days=30):
            warnings.append(f"exception {exc.id} expires on {exc.expires}")
    for req in policy.requirements:
        for ident in req.identities:
            for label, rx in (("subjectRegExp", ident.subject_regexp), ("issuerRegExp", ident.issuer_regexp)):
                if rx and not anchored(rx):
                    warnings.append(f"{req.name}: {label} {rx!r} is not anchored: it matches anywhere in the "
                                    "certificate's value, as in cosign; write '^…$' (or '^(?:a|b)$') to match "
                                    "the whole value")
        if req.identities and not req.transparency_log:
            warnings.append(f"{req.name}: keyless identities without transparencyLog: required")
    if not policy.requirements:
        warnings.append("no signatures section: any image runs whose settings pass (add one with "
                        "`stockade policy new`)")
    doc = load_documents(text, file)[0]
    own: PolicyFile = Converter(doc).build(PolicyFile, doc.value, ())
    if policy.profile is not None:
        warnings += _weakened(own.spec.runtime, builtin_policy(policy.profile).runtime, policy.profile)
    return warnings
