"""The policy gate of ``stockade run`` and ``create`` (and of ``policy explain``, which stops after it).

Between resolving the image's digest and pulling anything, the request meets its policy:

1. the request becomes the policy input document (``request_document``): the image as the user
   named it, the digest that will run, its configuration, and the container settings *as asked*
   (a flag not given is ``null``);
2. the signatures the policy requires for that image are verified at that digest
   (``stockade.verification``; cached);
3. ``policies.harden`` fills what the user did not ask for with the policy's hardened values (a
   read-only root, ``ALL`` dropped, RuntimeDefault seccomp, no_new_privs, uid 65534 for an image
   without a non-root ``USER``) and the engine's own defaults fill the rest, so the document the
   policy judges is what will run;
4. ``policies.evaluate`` decides. A denial raises ``PolicyDenied`` listing every violation (rule,
   what was found, what is expected, the fix) with exit code ``EXIT_DENIED``; nothing has been
   written. An allowed request's effective settings become the engine's options (``effective``).

An allowed decision is kept in the admission cache (``stockade.gatecache``) for as long as
everything it rests on is unchanged, so a warm ``run`` of an admitted image loads neither the policy
engine nor trust. ``--rootfs DIR`` and images known only by ID have no name or provenance: only a
policy without image rules (no registries, signatures or custom rules) admits them.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from engine.errors import StockadeError
from engine.records import Record, field, replace
from hardening.defaults import Hardening, decide
from policies.runflags import user_fact
from stockade.gatecache import file_sha256

if TYPE_CHECKING:
    from engine.containers.create import MountRequest
    from policies import Decision, Policy
    from stockade.context import Context
    from stockade.run import Resolved, RunRequest

EXIT_DENIED = 122  # README "Exit codes": refused by the policy before anything was written
NAMELESS_REFERENCE = "rootfs.invalid/unnamed"  # stands for a --rootfs directory or an unnamed image


class PolicyDenied(StockadeError):
    """The policy refuses the request; the message lists every violation with its fix."""

    exit_code = EXIT_DENIED


class GateError(StockadeError):
    """The gate could not decide (an invalid policy, a malformed reference): ``run`` fails (125)."""

    exit_code = 125


class Admitted(Record):
    """What the gate lets run: the request with the policy's values filled in, and its hardening."""

    request: RunRequest
    hardening: Hardening
    policy: str
    warnings: list[str] = field(default_factory=list)
    cached: bool = False


class Subject(Record):
    """The image as the gate judges it: the name the policy matches, the digest that will run."""

    reference: str  # as the user wrote it, or the image's first tag when run by ID
    digest: str | None
    config: dict[str, Any]  # the image config's ``config`` object
    named: bool = True  # False for --rootfs and images known only by ID


# --- the request as an input document ------------------------------------------------------------

def _caps(names: list[str]) -> list[str]:
    return [n.upper().removeprefix("CAP_") for n in names]


def seccomp_fact(value: str) -> dict[str, Any]:
    """A ``--security-opt seccomp=`` value (or ``[containers] seccomp_profile``) as the document says it."""
    if value == "unconfined":
        return {"type": "Unconfined"}
    if value == "default":
        return {"type": "RuntimeDefault"}
    return {"type": "Localhost", "profile": value, "sha256": file_sha256(value)}


def pinned(ctx: Context, req: RunRequest) -> tuple[RunRequest, list[MountRequest]]:
    """``req`` fixed to what the engine will mount, so the gate judges that and nothing else, and
    the mounts ``--volumes-from`` passes on (for ``request_document``).

    A bind source becomes its real path: judged as a path under an allowed prefix, a symlink the
    user controls could otherwise be pointed at ``/`` between the decision and the mount (a cold
    run pulls in between). A ``--volumes-from`` container is named by its ID, so the donor whose
    mounts were judged is the one the engine reads, and its binds are judged as binds: a policy that
    forbids host paths must not admit them through another container that has them."""
    from engine.containers.create import inherited_mounts
    from engine.containers.store import ContainerStore

    o = req.options
    mounts = [replace(m, source=os.path.realpath(m.source)) if m.type == "bind" else m for m in o.mounts]
    donors, inherited = [], []
    if o.volumes_from:
        store = ContainerStore(ctx.paths)
        for ref in o.volumes_from:
            name, sep, mode = ref.partition(":")
            cid = store.find(name)
            inherited += inherited_mounts(store.load(cid), mode)
            donors.append(cid + sep + mode)
    return replace(req, options=replace(o, mounts=mounts, volumes_from=donors)), inherited


def _mount_fact(m: MountRequest) -> dict[str, Any]:
    if m.type == "bind":
        return {"type": "bind", "source": os.path.realpath(m.source), "destination": m.target,
                "readOnly": m.readonly, "kind": None}
    return {"type": m.type, "source": m.source or None, "destination": m.target,
            "readOnly": m.readonly, "kind": "local" if m.type == "volume" else None}


def request_document(req: RunRequest, subject: Subject, *, rootless: bool,
                     inherited: list[MountRequest] | None = None) -> dict[str, Any]:
    """The input document of ``req`` as asked (after ``pinned``, whose ``inherited`` mounts it
    lists too): every container setting the flags did not give is ``null``, except what Stockade
    has no flag for (those namespaces are always private)."""
    o = req.options
    c: dict[str, Any] = {}
    if o.user is not None:
        c["user"] = user_fact(o.user)
    if o.read_only:
        c["readOnlyRootFilesystem"] = True
    if o.privileged:
        c["privileged"] = True
    if req.no_new_privileges is not None:
        c["noNewPrivileges"] = req.no_new_privileges
    if o.cap_add or o.cap_drop:
        c["capabilities"] = {"add": _caps(o.cap_add), "drop": _caps(o.cap_drop)}
    if req.seccomp is not None:
        c["seccomp"] = seccomp_fact(req.seccomp)
    if o.security_opt:
        c["securityOptions"] = list(o.security_opt)
    c["namespaces"] = {"network": o.network, "pid": "private", "ipc": "private", "uts": "private",
                       "cgroup": "private", "user": "private" if rootless or o.userns == "auto" else "host"}
    mounts = [_mount_fact(m) for m in o.mounts]
    # --volumes-from is a kind of its own, which a policy with a volume list must opt in to (as
    # policy check reads it), and what the other container passes on is judged mount by mount.
    mounts += [{"type": "volume", "source": v.partition(":")[0], "destination": "(volumes-from)",
                "readOnly": v.endswith(":ro"), "kind": "volumes-from"} for v in o.volumes_from]
    mounts += [_mount_fact(m) for m in inherited or ()]
    if mounts:
        c["mounts"] = mounts
    resources = {k: v for k, v in (("memory", o.memory), ("cpus", o.cpus),
                                   ("pids", o.pids_limit if o.pids_limit and o.pids_limit > 0 else None)) if v}
    if resources:
        c["resources"] = resources
    context: dict[str, Any] = {"kind": "run", "command": list(o.command)}
    if o.entrypoint is not None:  # replaces what runs as much as the command does
        context["entrypoint"] = list(o.entrypoint)
    if req.policy:
        context["policy"] = req.policy
    if req.rootfs:
        context["rootfs"] = str(Path(req.image).absolute())
    return {"image": {"reference": subject.reference, "digest": subject.digest, "config": subject.config},
            "container": c, "context": context}


def engine_defaults(container: dict[str, Any], ctx: Context) -> None:
    """Fill what neither the user nor the policy set with what the engine will do, so the decision
    is about what runs (a configured ``seccomp_profile = "unconfined"`` must not pass a policy that
    forbids Unconfined just because nobody asked for it)."""
    cfg = ctx.config.containers
    defaults = {"seccomp": None if container.get("privileged") else seccomp_fact(cfg.seccomp_profile),
                "noNewPrivileges": cfg.no_new_privileges, "readOnlyRootFilesystem": False, "privileged": False}
    for key, value in defaults.items():
        if container.get(key) is None and value is not None:
            container[key] = value
    if container.get("privileged") and container.get("seccomp") is None:
        container["seccomp"] = {"type": "Unconfined"}
    if container.get("resources") and ctx.paths.rootless:
        from engine.host import probe_cgroups

        if probe_cgroups().manager_for(rootless=True) == "none":
            # Rootless on cgroup v1 sets no limit: a policy's default limits cannot apply either, and
            # a policy requiring one must see that there is none.
            del container["resources"]


# --- the effective settings as engine options -----------------------------------------------------

def effective(req: RunRequest, container: Mapping[str, Any], ctx: Context) -> tuple[RunRequest, Hardening]:
    """The request with the hardened document's settings, and the hardening the engine applies."""
    from hardening.capabilities import normalized

    o = replace(req.options)
    user = container.get("user") or {}
    if o.user is None and user.get("uid") is not None:
        o.user = f"{user['uid']}:{user['gid']}" if user.get("gid") is not None else str(user["uid"])
    o.run_as_non_root = container.get("runAsNonRoot") is True
    o.read_only = container.get("readOnlyRootFilesystem") is True or o.read_only
    caps = container.get("capabilities") or {}
    o.cap_add, o.cap_drop = normalized(list(caps.get("add") or [])), normalized(list(caps.get("drop") or []))
    resources = container.get("resources") or {}
    o.memory = resources.get("memory", o.memory)
    o.cpus = resources.get("cpus", o.cpus)
    o.pids_limit = resources.get("pids", o.pids_limit)
    seccomp = req.seccomp
    fact = container.get("seccomp") or {}
    if fact.get("type") == "RuntimeDefault":
        seccomp = "default"
    elif fact.get("type") == "Localhost":
        seccomp = fact["profile"]
    elif fact.get("type") == "Unconfined":
        seccomp = "unconfined"
    nnp = container.get("noNewPrivileges")
    out = replace(req, options=o, seccomp=seccomp,
                              no_new_privileges=req.no_new_privileges if nnp is None else nnp)
    hardening = decide(ctx.config.containers, cap_add=o.cap_add, cap_drop=o.cap_drop, privileged=o.privileged,
                       seccomp=out.seccomp, no_new_privileges=out.no_new_privileges)
    return out, hardening


# --- the image ------------------------------------------------------------------------------------

def subject_of(ctx: Context, req: RunRequest, resolved: Resolved) -> Subject:
    """Name, digest and configuration of what will run, without writing anything."""
    if req.rootfs:
        return Subject(NAMELESS_REFERENCE, None, {"User": ""}, named=False)
    from engine.reference import Reference, ReferenceError

    try:
        ref: Any = Reference.parse(req.image)
    except ReferenceError:
        ref = None
    image = resolved.image
    if image is None:  # not in the store: the registry's, read in memory
        return Subject(req.image, resolved.digest, _registry_config(ctx, ref, resolved.digest))
    from engine.store import Store

    config = Store(ctx.paths, ctx.config).image_config(image).get("config") or {}
    tagged = {t.rpartition(":")[0] for t in image.repo_tags} | {d.partition("@")[0] for d in image.repo_digests}
    if ref is not None and ref.name in tagged:
        # The digest this very tag was resolved to when pulled (an index for a multi-platform
        # image): what a signer of the tag signed. Never another tag's digest in the repository.
        return Subject(req.image, ref.digest or image.digest_for(f"{ref.name}:{ref.tag}"), config)
    if image.repo_tags:  # run by ID: judged by the name it is known by
        return Subject(image.repo_tags[0], image.digest_for(image.repo_tags[0]), config)
    return Subject(NAMELESS_REFERENCE, image.digest, config, named=False)


def _registry_config(ctx: Context, ref: Any, digest: str) -> dict[str, Any]:
    """The image config's ``config`` of ``ref@digest``, fetched into memory (nothing is stored)."""
    import json

    from engine.registry.client import RegistryClient

    client = RegistryClient(ctx.config, ctx.paths)
    try:
        found = client.resolve(ref.with_digest(digest))
        raw = client.fetch_blob(ref, found.manifest.config)
    finally:
        client.close()
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise GateError(f"image {ref}: its configuration is not JSON: {exc}") from None
    config = doc.get("config") if isinstance(doc, dict) else None
    return config if isinstance(config, dict) else {}


# --- the decision ---------------------------------------------------------------------------------

class Judgement(Record):
    """Everything the gate established: for ``run`` and for ``policy explain``."""

    policy: Policy
    subject: Subject
    requested: dict[str, Any]
    document: dict[str, Any]  # effective: hardened, then the engine's defaults
    applied: list[dict[str, Any]]
    decision: Decision
    expires: float | None  # of the verification behind it


def policy_name(ctx: Context, req: RunRequest) -> str:
    return req.policy or ctx.config.policy.default


def judge(ctx: Context, req: RunRequest, subject: Subject, requested: dict[str, Any]) -> Judgement:
    """Verify, harden and evaluate the ``requested`` document of ``req`` (see the module docstring);
    writes nothing but the verification cache."""
    from policies import PolicyError, evaluate, harden, requirements_for, resolve_policy
    from policies.controls import RUNTIME_RULES

    try:
        policy = resolve_policy(policy_name(ctx, req))
    except PolicyError as exc:
        raise GateError(f"policy: {exc}") from None
    requested = copy.deepcopy(requested)
    image = requested["image"]
    expires = None
    if not subject.named:
        image_rules = [c.rule for c in policy.controls if c.rule not in RUNTIME_RULES]
        image_rules += [r.spec.id for r in policy.rules]
        if image_rules:
            what = f"--rootfs {req.image}" if req.rootfs else f"image {req.image}"
            raise PolicyDenied(
                f"denied by policy {policy.label}: {what} has no name or provenance, and the policy "
                f"has image rules ({', '.join(dict.fromkeys(image_rules))}); fix: run a named image "
                f"(stockade import DIR NAME, then sign it), or use a policy without image rules")
    else:
        try:
            requirements = requirements_for(policy, subject.reference)
        except PolicyError as exc:
            raise GateError(f"{req.image}: {exc}") from None
        if requirements and not ctx.config.policy.verify_signatures:
            image["verification"] = {"error": "signature verification is turned off ([policy] "
                                              "verify_signatures = false)", "failures": []}
        elif requirements:
            from stockade.verification import PolicyVerifier

            verifier = PolicyVerifier(ctx.config, ctx.paths)
            try:
                facts = verifier.verify(subject.reference, requirements, digest=subject.digest)
            finally:
                verifier.close()
            image.update(facts.as_image())
            expires = facts.expires
    try:
        hardened = harden(policy, requested)
        document = hardened.document
        engine_defaults(document["container"], ctx)
        decision = evaluate(policy, document)
    except PolicyError as exc:
        raise GateError(f"{req.image}: {exc}") from None
    return Judgement(policy, subject, requested, document, [a.as_dict() for a in hardened.applied], decision,
                     expires)


def warning_lines(decision: Decision) -> list[str]:
    return [f"policy {decision.policy}: [{r.finding.rule}] {r.finding.message}"
            + (f" (fix: {r.finding.fix})" if r.finding.fix else "") for r in decision.warnings]


def admit(ctx: Context, req: RunRequest, resolved: Resolved) -> Admitted:
    """The gate for ``run``/``create``: the admitted request and its hardening, or ``PolicyDenied``."""
    from stockade import gatecache

    req, inherited = pinned(ctx, req)
    subject = subject_of(ctx, req, resolved)
    requested = request_document(req, subject, rootless=ctx.paths.rootless, inherited=inherited)
    cache = gatecache.AdmissionCache.for_paths(ctx.paths.cache)
    key = gatecache.material(ctx, policy_name(ctx, req), requested)
    hit = cache.get(key) if key is not None else None
    if hit is not None and isinstance(hit.get("container"), dict) and isinstance(hit.get("warnings"), list):
        return _admitted(ctx, req, hit["container"], hit["policy"], list(hit["warnings"]), cached=True)
    judgement = judge(ctx, req, subject, requested)
    decision = judgement.decision
    if not decision.allowed:
        raise PolicyDenied(decision.summary())
    container = judgement.document["container"]
    warnings = warning_lines(decision)
    ignored = [a["path"].rpartition(".")[2] for a in judgement.applied
               if a["path"].startswith("container.resources.") and "resources" not in container]
    if ignored:  # engine_defaults dropped them: say so, as for --memory
        warnings.append(f"policy {decision.policy}: default limits ({', '.join(ignored)}) not applied: resource "
                        f"limits are not supported and ignored on cgroups v1 rootless systems")
    if key is not None:
        now = cache.clock()
        expires = min(x for x in (judgement.expires, now + cache.ttl, cache.end_of_day(now)) if x is not None)
        cache.put(key, {"container": container, "policy": decision.policy, "warnings": warnings},
                  depends=gatecache.depends(judgement.policy), expires=expires)
    return _admitted(ctx, req, container, decision.policy, warnings)


def _admitted(ctx: Context, req: RunRequest, container: Mapping[str, Any], policy: str, warnings: list[str],
              *, cached: bool = False) -> Admitted:
    admitted_req, hardening = effective(req, container, ctx)
    fact = container.get("seccomp") or {}
    if fact.get("type") == "Localhost" and hardening.seccomp_profile is not None:
        hardening = judged_profile(ctx, hardening, fact.get("sha256"), policy)
    for line in warnings:
        sys.stderr.write(f"stockade: warning: {line}\n")
    return Admitted(admitted_req, hardening, policy, warnings, cached=cached)


def judged_profile(ctx: Context, hardening: Hardening, sha256: str | None, policy: str) -> Hardening:
    """``hardening`` with its Localhost seccomp profile replaced by a private copy of the bytes the
    decision was about, which the filter is then compiled from.

    The decision names the profile's SHA-256: the file's when the user gave the path, the policy's
    pin when the policy filled in its listed profile (nobody had read the file then). The file is
    read once more here, before anything is pulled: content other than that (a pinned profile
    replaced on disk, a file edited after the decision) is refused, and the copy keeps a later edit
    from reaching the compiler."""
    import dataclasses
    import hashlib

    from engine.atomicfile import write_atomic
    from engine.cachefiles import private_directory
    from stockade.gatecache import MAX_DEPENDENCY_BYTES

    path = str(hardening.seccomp_profile)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_DEPENDENCY_BYTES + 1)
    except OSError as exc:
        raise GateError(f"seccomp profile {path}: {exc.strerror}") from None
    found = hashlib.sha256(raw).hexdigest()
    if found != sha256 or len(raw) > MAX_DEPENDENCY_BYTES:
        raise PolicyDenied(f"denied by policy {policy}: the seccomp profile {path} is not the one the decision "
                           f"was about (found sha256 {found}, expected {sha256}); fix: restore the profile the "
                           "policy lists, or run again if you changed it on purpose")
    copies = ctx.paths.cache / "seccomp" / "profiles"
    if not private_directory(copies):  # nobody else may swap the copy
        raise GateError(f"{copies} is not this user's own directory: refusing to keep a profile there")
    copy_path = copies / f"{found}.json"
    write_atomic(copy_path, raw, mode=0o600)
    return dataclasses.replace(hardening, seccomp_profile=str(copy_path))
