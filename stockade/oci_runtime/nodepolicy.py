"""The node policy: every bundle this runtime creates meets it, whoever sent it.

A node policy is an ordinary Stockade policy file (``policies``), so the rules a cluster's admission
webhook enforces on Pods can be enforced again, per node, on what actually reaches the runtime. Which
file: ``--node-policy PATH`` (a global flag; podman passes it with ``--runtime-flag``), else
``$STOCKADE_RUNTIME_POLICY``, else ``/etc/stockade/runtime-policy.yaml``. With none of these the built-in
default applies (``default-node-policy.yaml`` beside this module): the ``baseline`` profile in ``warn``
mode, which refuses nothing, logs what baseline would refuse, and fills what a bundle left unsaid (a
bundle without ``linux.seccomp`` gets RuntimeDefault). A named file that cannot be read or parsed
refuses every bundle: the runtime fails closed.

The bundle becomes a policy input document (``document``): the user, privileged (podman's annotation,
or every capability with no filter and a writable /sys), the read-only root, no_new_privs, the
capabilities (a bundle states its whole set, so it reads as ``drop: [ALL]`` plus what it keeps), the
seccomp profile (none; ``Unconfined``; or the inline profile as ``Localhost`` with its sha256), the
namespaces (created = ``private``, absent = ``host``), the bind and tmpfs mounts, and the limits. The
image is ``io.kubernetes.cri.image-name`` when containerd's CRI plugin says it, else nameless: image and
signature rules belong to the admission webhook and ``stockade run``, which see the image; the runtime
evaluates the policy's runtime rules only. ``policies.harden`` fills what the bundle left unset (the
effective document), ``policies.evaluation.decide`` applies the modes: an ``enforce`` violation refuses
the bundle, with every reason in the runtime log; ``warn`` and ``audit`` findings are logged.

Loading the policy engine costs more than the rest of ``create`` together, so an allowed outcome is kept
in ``stockade.gatecache``'s admission cache under the runtime's root, keyed by the policy file's content
and the document. In that document the container's id inside bind-mount sources (podman and containerd
keep ``/etc/hosts`` and friends under per-container directories) reads ``{id}``: two containers that
differ only by their id share one decision. The cost is that a policy cannot single out one container id
in a bind-mount prefix, which no policy has reason to do.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from engine.errors import StockadeError
from engine.records import Record, asdict, field
from engine.spec import CapabilitySets
from stockade.oci_runtime.bundle import Translated, host_capabilities

ENV = "STOCKADE_RUNTIME_POLICY"
DEFAULT_FILE = "/etc/stockade/runtime-policy.yaml"
BUILTIN = Path(__file__).with_name("default-node-policy.yaml")
NAMELESS = "rootfs.invalid/unnamed"  # as stockade.gate names an image it cannot name
IMAGE_ANNOTATIONS = ("io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName")
FORMAT = 1


class NodePolicyError(StockadeError):
    """The node policy cannot be read or is invalid: every bundle is refused until it is fixed."""


class NodePolicyRefusal(StockadeError):
    """The node policy refuses this bundle; the message lists every violation."""


class Outcome(Record):
    """What the policy decided for an allowed bundle: the effective settings and what to log."""

    policy: str
    container: dict[str, Any]
    applied: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audits: list[str] = field(default_factory=list)


def policy_file(flag: str | None) -> str:
    """The node policy in force (see the module docstring)."""
    named = flag or os.environ.get(ENV)
    if named:
        return os.path.abspath(named)
    return DEFAULT_FILE if os.path.exists(DEFAULT_FILE) else str(BUILTIN)


# --- the input document ---------------------------------------------------------------------------
def _held(sets: CapabilitySets) -> set[str]:
    return set(sets.bounding) | set(sets.effective) | set(sets.permitted) | set(sets.ambient)


def seccomp_fact(tr: Translated) -> dict[str, Any] | None:
    doc = tr.seccomp
    if doc is None:
        return {"type": "Unconfined"} if tr.privileged else None
    permissive = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
    rules = doc.get("syscalls") or []
    if doc.get("defaultAction") in permissive and all(
            isinstance(r, dict) and r.get("action") in permissive for r in rules):
        return {"type": "Unconfined"}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return {"type": "Localhost", "profile": None, "sha256": hashlib.sha256(raw).hexdigest()}


def _namespace(kind: str, tr: Translated) -> str:
    spec = tr.spec
    if kind in spec.namespaces:
        return "private"
    path = spec.namespace_paths.get(kind)
    if path is None:
        return "host"
    proc_name = {"network": "net", "mount": "mnt"}.get(kind, kind)
    try:
        theirs, ours = os.stat(path), os.stat(f"/proc/self/ns/{proc_name}")
    except OSError:
        return f"container:{path}"
    return "host" if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino) else f"container:{path}"


def document(tr: Translated, cid: str) -> dict[str, Any]:
    """The bundle as the policy reads it, with the container id generalised (module docstring)."""
    spec, proc = tr.spec, tr.spec.process
    uid, _, gid = proc.user.partition(":")
    c: dict[str, Any] = {
        "user": {"uid": int(uid), "gid": int(gid)}, "privileged": tr.privileged,
        "readOnlyRootFilesystem": True if spec.root.readonly else None,
        "noNewPrivileges": True if proc.no_new_privileges else None,
        "seccomp": seccomp_fact(tr),
        "namespaces": {ns: _namespace(ns, tr) for ns in ("network", "pid", "ipc", "uts", "user", "cgroup")},
    }
    if tr.capabilities_given:
        held = _held(proc.capabilities)
        c["capabilities"] = ({"add": ["ALL"], "drop": []} if host_capabilities() <= held else
                             {"add": sorted(n.removeprefix("CAP_") for n in held), "drop": ["ALL"]})
    mounts = []
    for m in spec.mounts:
        source = m.source.replace(cid, "{id}") if m.type == "bind" else None
        mounts.append({"type": m.type, "source": source, "destination": m.destination,
                       "readOnly": "ro" in m.options, "kind": None})
    if mounts:
        c["mounts"] = mounts
    r = spec.resources
    resources = {"memory": r.memory, "pids": r.pids,
                 "cpus": r.cpu_quota / (r.cpu_period or 100000) if r.cpu_quota else None}
    if any(v is not None for v in resources.values()):
        c["resources"] = {k: v for k, v in resources.items() if v is not None}
    reference = next((tr.annotations[k] for k in IMAGE_ANNOTATIONS if tr.annotations.get(k)), NAMELESS)
    return {"image": {"reference": reference, "config": None}, "container": c, "context": {"kind": "oci-runtime"}}


# --- the decision ---------------------------------------------------------------------------------
def _finding_line(result: Any) -> str:
    f = result.finding
    return f"[{f.rule}] {f.message} ({f.path}: found {json.dumps(f.found)}, expected {json.dumps(f.expected)})"


def _decide(doc: dict[str, Any], path: str) -> tuple[Outcome, Any]:
    from policies import PolicyError, harden, load_policy
    from policies.document import parse
    from policies.evaluation import decide

    try:
        policy = load_policy(path)
    except PolicyError as exc:
        raise NodePolicyError(f"node policy {path}: {exc}") from None
    try:
        hardened = harden(policy, doc)
        decision = decide(policy, parse(hardened.document), list(hardened.violations))
    except PolicyError as exc:
        raise NodePolicyError(f"node policy {path}: the bundle's input document: {exc}") from None
    if not decision.allowed:
        reasons = "; ".join(_finding_line(r) + (f" (fix: {r.finding.fix})" if r.finding.fix else "")
                            for r in decision.violations)
        raise NodePolicyRefusal(f"refused by the node policy {policy.label} ({path}): "
                                f"{len(decision.violations)} violation(s): {reasons}")
    outcome = Outcome(
        policy=policy.label, container=hardened.document["container"],
        applied=[f"{a.path} = {json.dumps(a.value)}: {a.reason}" for a in hardened.applied],
        warnings=[_finding_line(r) for r in decision.warnings],
        audits=[_finding_line(r) for r in decision.audits])
    return outcome, policy


def evaluate(doc: dict[str, Any], path: str, cache_dir: Path) -> tuple[Outcome, bool]:
    """The policy's outcome for ``doc`` and whether it came from the cache (NodePolicyRefusal if the
    policy refuses)."""
    from stockade import __version__
    from stockade.gatecache import AdmissionCache, depends, file_sha256

    digest = file_sha256(path)
    if digest is None:
        raise NodePolicyError(f"node policy {path} cannot be read; every bundle is refused until it can")
    material = {"format": FORMAT, "use": "oci-runtime node policy", "stockade": __version__,
                "policy": {"file": path, "sha256": digest}, "document": doc}
    cache = AdmissionCache(cache_dir)
    hit = cache.get(material)
    if hit is not None:
        try:
            return Outcome(**hit), True
        except TypeError:
            pass  # an entry of another shape: decide afresh
    outcome, policy = _decide(doc, path)
    now = cache.clock()
    cache.put(material, asdict(outcome), depends=depends(policy),
              expires=min(now + cache.ttl, cache.end_of_day(now)))
    return outcome, False


# --- back onto the bundle -------------------------------------------------------------------------
def apply(tr: Translated, container: dict[str, Any]) -> tuple[tuple[str, Any] | None, list[str]]:
    """Give the translated bundle the effective settings; return its seccomp source and capabilities."""
    from hardening.capabilities import resolve

    spec, proc = tr.spec, tr.spec.process
    if container.get("readOnlyRootFilesystem") is True:
        spec.root.readonly = True
    if container.get("noNewPrivileges") is True:
        proc.no_new_privileges = True
    if container.get("runAsNonRoot") is True:
        proc.run_as_non_root = True
    if not tr.capabilities_given:
        caps = container.get("capabilities") or {}
        names = resolve(list(caps.get("add") or []), list(caps.get("drop") or []), privileged=tr.privileged)
        proc.capabilities = CapabilitySets(bounding=list(names), effective=list(names), permitted=list(names))
    held = sorted(_held(proc.capabilities))
    resources = container.get("resources") or {}
    r = spec.resources
    if r.memory is None and resources.get("memory"):
        r.memory = int(resources["memory"])
    if r.pids is None and resources.get("pids"):
        r.pids = int(resources["pids"])
    if r.cpu_quota is None and resources.get("cpus"):
        r.cpu_period = r.cpu_period or 100000
        r.cpu_quota = int(float(resources["cpus"]) * r.cpu_period)
    seccomp = container.get("seccomp") or {}
    if tr.seccomp is not None:
        return ("inline", tr.seccomp), held
    if seccomp.get("type") == "RuntimeDefault":
        return ("profile", "default"), held
    if seccomp.get("type") == "Localhost" and seccomp.get("profile"):
        return ("profile", seccomp["profile"]), held
    return None, held
