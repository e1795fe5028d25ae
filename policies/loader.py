"""Loading a policy: strict parsing, its profile underneath, keys read, CEL compiled, checks built.

``load_policy(path)`` and ``resolve_policy(name_or_path)`` return a ``Policy`` ready to evaluate.
Everything that can be wrong with a policy is found here, at load, with ``FILE:LINE:COL: FIELD:``:
unknown fields, wrong types, bad enum values, a missing key file, a CEL syntax error, an exception
naming a rule that does not exist. Evaluation itself never fails because of the policy.

A policy names a ``profile`` (default ``restricted``): the profile's settings apply wherever the
policy leaves a field unset, and the policy's own signatures, rules and exceptions add to the
profile's. ``profile: privileged`` starts from nothing.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from policies import profiles
from policies.controls import IMAGE_RULES, RUNTIME_RULES, Control, compile_controls
from policies.errors import ExpressionError, PolicyLoadError
from policies.expressions import CompiledExpression, ExpressionEngine
from policies.model import ExceptionSpec, ImagesSpec, Mode, PolicyFile, PolicySpec, RuleSpec, RuntimeSpec, \
    SignatureSpec
from policies.signatures import IdentityRequirement, KeyRequirement, SignatureCheck, SignatureRequirement, \
    TufRequirement
from policies.typed import Converter, suggest, to_plain
from policies.yamlsource import Document, Path, load_documents, read_text

MAX_POLICY_BYTES = 4 * 1024 * 1024
MAX_KEY_BYTES = 64 * 1024
SIGNATURE_RULES = ("signatures", "signatures.tuf")
BUILTIN_RULES = IMAGE_RULES + SIGNATURE_RULES + RUNTIME_RULES

_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END PUBLIC KEY-----")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    spec: RuleSpec
    expression: CompiledExpression


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded policy with its profile applied: what ``evaluate`` and ``harden`` take."""

    name: str
    revision: int | None
    description: str | None
    source: str
    profile: str | None
    mode: Mode
    modes: Mapping[str, Mode]
    images: ImagesSpec | None
    signatures: tuple[SignatureSpec, ...]
    runtime: RuntimeSpec | None
    rules: tuple[CompiledRule, ...]
    exceptions: tuple[ExceptionSpec, ...]
    controls: tuple[Control, ...]
    requirements: tuple[SignatureRequirement, ...]
    engine: ExpressionEngine | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.revision}" if self.revision is not None else self.name

    def rule_ids(self) -> tuple[str, ...]:
        return BUILTIN_RULES + tuple(r.spec.id for r in self.rules)

    def mode_of(self, rule: str) -> Mode:
        return self.modes.get(rule, self.mode)

    def to_plain(self) -> dict[str, Any]:
        """The resolved policy as a file would hold it (``policy show``): profile already applied."""
        spec = PolicySpec(profile=None, mode=self.mode, modes=dict(self.modes) or None, images=self.images,
                          signatures=self.signatures, runtime=self.runtime,
                          rules=tuple(r.spec for r in self.rules), exceptions=self.exceptions)
        meta: dict[str, Any] = {"name": self.name}
        if self.revision is not None:
            meta["revision"] = self.revision
        if self.description:
            meta["description"] = self.description
        plain_spec = to_plain(spec)
        for empty in ("signatures", "rules", "exceptions"):
            if not plain_spec.get(empty):
                plain_spec.pop(empty, None)
        return {"apiVersion": "stockade.dev/v1", "kind": "Policy", "metadata": meta,
                "resolvedFrom": {"source": self.source, "profile": self.profile}, "spec": plain_spec}


# ------------------------------------------------------------------------------------------ merge

def overlay(base: Any, top: Any) -> Any:
    """``top``'s set fields over ``base``'s, recursively: the profile supplies what a policy leaves unset."""
    if top is None:
        return base
    if base is None or not dataclasses.is_dataclass(top) or type(base) is not type(top):
        return top
    changes = {f.name: overlay(getattr(base, f.name), getattr(top, f.name)) for f in dataclasses.fields(top)}
    return dataclasses.replace(base, **changes)


def _merge_spec(base: PolicySpec, top: PolicySpec) -> PolicySpec:
    return PolicySpec(
        profile=top.profile, mode=top.mode or base.mode,
        modes={**(base.modes or {}), **(top.modes or {})} or None,
        images=overlay(base.images, top.images), signatures=base.signatures + top.signatures,
        runtime=overlay(base.runtime, top.runtime), rules=base.rules + top.rules,
        exceptions=base.exceptions + top.exceptions)


# ------------------------------------------------------------------------------------------- load

def _public_key(doc: Document, path: Path, pem: str, origin: str) -> tuple[str, str]:
    m = _PEM.search(pem)
    if not m:
        raise doc.error(path, f"{origin} is not a PEM public key ('-----BEGIN PUBLIC KEY-----')")
    try:
        der = base64.b64decode("".join(m.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        raise doc.error(path, f"{origin}: the PEM body is not valid base64") from None
    if len(der) < 32 or der[0] != 0x30:
        raise doc.error(path, f"{origin}: the PEM body is not a DER SubjectPublicKeyInfo")
    return m.group(0), hashlib.sha256(der).hexdigest()


def _requirements(doc: Document, spec: PolicySpec, base_dir: str, first: int) -> tuple[SignatureRequirement, ...]:
    out = []
    for n, entry in enumerate(spec.signatures):
        where: Path = ("spec", "signatures", n)
        keys = []
        for k, key in enumerate(entry.keys):
            if key.pem is not None:
                pem, key_id = _public_key(doc, (*where, "keys", k, "pem"), key.pem, "the inline key")
                keys.append(KeyRequirement(key_id, pem, None))
            else:
                file = os.path.normpath(os.path.join(base_dir, key.path or ""))
                try:
                    text = read_text(file, limit=MAX_KEY_BYTES, what="key")
                except PolicyLoadError as exc:
                    raise doc.error((*where, "keys", k, "path"), exc.problem + f" ({file})") from None
                pem, key_id = _public_key(doc, (*where, "keys", k, "path"), text, file)
                keys.append(KeyRequirement(key_id, pem, file))
        tuf = None
        if entry.tuf is not None:
            root = os.path.normpath(os.path.join(base_dir, entry.tuf.root))
            try:
                with open(root, "rb") as fh:
                    digest = hashlib.sha256(fh.read(MAX_POLICY_BYTES)).hexdigest()
            except OSError as exc:
                raise doc.error((*where, "tuf", "root"), f"cannot read the TUF root {root}: {exc.strerror}") from None
            if entry.tuf.root_sha256 is not None and entry.tuf.root_sha256 != digest:
                raise doc.error((*where, "tuf", "rootSha256"), f"{root} has sha256 {digest}, not the pinned value")
            tuf = TufRequirement(entry.tuf.url, root, digest)
        identities = tuple(IdentityRequirement(i.subject, i.subject_regexp, i.issuer, i.issuer_regexp)
                           for i in entry.identities)
        out.append(SignatureRequirement(entry.name or f"signatures[{first + n}]", entry.images, tuple(keys),
                                        identities, entry.transparency_log.value == "required",
                                        entry.threshold, tuf))
    return tuple(out)


def _compile_rules(doc: Document, spec: PolicySpec, first: int,
                   engine: ExpressionEngine | None) -> tuple[tuple[CompiledRule, ...], ExpressionEngine | None]:
    if not spec.rules:
        return (), engine
    if engine is None:
        from policies.expressions import default_engine  # CEL is imported only for policies with rules

        engine = default_engine()
    out = []
    for n, rule in enumerate(spec.rules):
        try:
            out.append(CompiledRule(rule, engine.compile(rule.expression)))
        except ExpressionError as exc:
            raise doc.error(("spec", "rules", first + n, "expression"), f"CEL: {exc}") from None
    return tuple(out), engine


def _check_references(doc: Document, spec: PolicySpec, known: tuple[str, ...]) -> None:
    for n, rule in enumerate(spec.rules):
        if rule.id in BUILTIN_RULES:
            raise doc.error(("spec", "rules", n, "id"), f"'{rule.id}' is a built-in rule id; choose another")
        if [r.id for r in spec.rules].count(rule.id) > 1:
            raise doc.error(("spec", "rules", n, "id"), f"duplicate rule id '{rule.id}'")
    for rule_id in spec.modes or {}:
        if rule_id not in known:
            raise doc.error(("spec", "modes", rule_id), "no such rule" + suggest(rule_id, known))
    for n, exc in enumerate(spec.exceptions):
        for k, rule_id in enumerate(exc.rules):
            if rule_id not in known:
                raise doc.error(("spec", "exceptions", n, "rules", k), f"no such rule '{rule_id}'"
                                + suggest(rule_id, known))


@dataclass(frozen=True, slots=True)
class _Layer:
    spec: PolicySpec
    profile: str | None
    requirements: tuple[SignatureRequirement, ...]
    rules: tuple[CompiledRule, ...]


def _load_layer(text: str, file: str, base_dir: str, default_profile: str | None, depth: int,
                engine: ExpressionEngine | None) -> tuple[PolicyFile, _Layer, ExpressionEngine | None]:
    docs = load_documents(text, file, max_nodes=200_000)
    if len(docs) != 1:
        raise PolicyLoadError(file, None, None, "", f"expected one YAML document, found {len(docs)}")
    doc = docs[0]
    parsed: PolicyFile = Converter(doc).build(PolicyFile, doc.value, ())
    spec = parsed.spec
    profile_name = spec.profile if spec.profile is not None else default_profile
    base = _Layer(PolicySpec(), None, (), ())
    if profile_name is not None:
        if depth > 4:
            raise doc.error(("spec", "profile"), "profiles nest too deeply")
        try:
            resolved, profile_text = profiles.resolve(profile_name)
        except KeyError as exc:
            raise doc.error(("spec", "profile"), str(exc.args[0])) from None
        _, base, engine = _load_layer(profile_text, f"builtin:{resolved}", base_dir, None, depth + 1, engine)
        base = dataclasses.replace(base, profile=resolved)
    rules, engine = _compile_rules(doc, spec, 0, engine)
    requirements = _requirements(doc, spec, base_dir, len(base.spec.signatures))
    merged = _merge_spec(base.spec, spec)
    known = BUILTIN_RULES + tuple(r.id for r in merged.rules)
    _check_references(doc, spec, known)
    return parsed, _Layer(merged, base.profile, base.requirements + requirements, base.rules + rules), engine


def load_policy_text(text: str, file: str = "<policy>", *, base_dir: str = ".",
                     default_profile: str | None = profiles.DEFAULT,
                     engine: ExpressionEngine | None = None) -> Policy:
    """Load a policy from its YAML text; relative key and TUF root paths resolve against ``base_dir``."""
    parsed, layer, engine = _load_layer(text, file, base_dir, default_profile, 0, engine)
    spec = layer.spec
    controls = compile_controls(spec.images, spec.runtime) + tuple(SignatureCheck(r) for r in layer.requirements)
    return Policy(parsed.metadata.name, parsed.metadata.revision, parsed.metadata.description, file,
                  layer.profile, spec.mode or Mode.ENFORCE, dict(spec.modes or {}), spec.images, spec.signatures,
                  spec.runtime, layer.rules, spec.exceptions, controls, layer.requirements, engine)


def load_policy(path: str, *, engine: ExpressionEngine | None = None) -> Policy:
    """Load a policy file (at most 4 MiB)."""
    text = read_text(path, limit=MAX_POLICY_BYTES, what="policy")
    return load_policy_text(text, path, base_dir=os.path.dirname(os.path.abspath(path)), engine=engine)


def builtin_policy(name: str) -> Policy:
    """A built-in profile as a policy: ``restricted``, ``baseline:v1``, …"""
    try:
        resolved, text = profiles.resolve(name)
    except KeyError as exc:
        raise PolicyLoadError(name, None, None, "", str(exc.args[0])) from None
    policy = load_policy_text(text, f"builtin:{resolved}", default_profile=None)
    return dataclasses.replace(policy, profile=resolved)


def resolve_policy(name_or_path: str) -> Policy:
    """``--policy`` values: a built-in profile name, or else a policy file path."""
    base = name_or_path.partition(":")[0]
    if base in profiles.NAMES and not os.path.exists(name_or_path):
        return builtin_policy(name_or_path)
    return load_policy(name_or_path)
