"""``stockade policy explain IMAGE [run flags]``: what ``run`` would do with this request, without running.

The request is parsed by the ``run`` verb's own parser and goes through the same gate
(``stockade.gate``): the digest is resolved, the required signatures are verified, the policy fills
and judges the settings. Nothing is pulled, created or cached (the verification cache may be, as by
``stockade verify``). The output says, for every setting that matters to the policy, its effective
value and where it comes from (asked for, filled by the policy and why, or the engine's default),
then the decision with every violation and its fix.

Exit codes, as ``policy check``: 0 allowed, 1 denied, 2 a usage error or an invalid policy.
"""

from __future__ import annotations

import sys
from typing import Any, Mapping

from stockade.context import Context
from stockade.output import print_json, print_table

EXIT_ALLOWED, EXIT_DENIED, EXIT_USAGE = 0, 1, 2


class ExplainError(Exception):
    """The request cannot be explained (a bad flag, an invalid policy, an unreachable image): exit 2."""

    user_facing = True
    exit_code = EXIT_USAGE


def _user(c: Mapping[str, Any]) -> str:
    user = c.get("user") or {}
    if user.get("uid") is not None:
        return f"{user['uid']}" + (f":{user['gid']}" if user.get("gid") is not None else "")
    return str(user.get("name") or "")


def _seccomp(c: Mapping[str, Any]) -> str:
    fact = c.get("seccomp") or {}
    kind = fact.get("type") or "(engine default)"
    return f"{kind} {fact['profile']}" if kind == "Localhost" else kind


def _namespaces(c: Mapping[str, Any]) -> str:
    ns = c.get("namespaces") or {}
    private = [k for k, v in ns.items() if v == "private"]
    return "; ".join([f"{k} {v}" for k, v in ns.items() if v != "private"] + ([f"{', '.join(private)} private"]
                                                                              if private else []))


def _mounts(c: Mapping[str, Any]) -> str:
    mounts = c.get("mounts") or []
    return "; ".join(f"{m['type']} {m.get('source') or ''}:{m['destination']}{' ro' if m.get('readOnly') else ''}"
                     for m in mounts) or "-"


def _resources(c: Mapping[str, Any]) -> str:
    res = c.get("resources") or {}
    return ", ".join(f"{k} {res.get(k) if res.get(k) is not None else '-'}" for k in ("memory", "cpus", "pids"))


SETTINGS = (
    ("user", "container.user", _user),
    ("run as non-root", "container.runAsNonRoot",
     lambda c: "checked at start" if c.get("runAsNonRoot") else "not required"),
    ("read-only root", "container.readOnlyRootFilesystem", lambda c: str(bool(c.get("readOnlyRootFilesystem"))).lower()),
    ("privileged", "container.privileged", lambda c: str(bool(c.get("privileged"))).lower()),
    ("no_new_privs", "container.noNewPrivileges", lambda c: str(bool(c.get("noNewPrivileges"))).lower()),
    ("capabilities", "container.capabilities", None),
    ("seccomp", "container.seccomp", _seccomp),
    ("namespaces", "container.namespaces", _namespaces),
    ("mounts", "container.mounts", _mounts),
    ("resources", "container.resources", _resources),
)


def _origin(path: str, applied: list[dict[str, Any]], requested: Mapping[str, Any]) -> str:
    reasons = [a["reason"] for a in applied if a["path"] == path or a["path"].startswith(path + ".")]
    if reasons:
        return "policy: " + "; ".join(reasons)
    value = requested.get(path.removeprefix("container."))
    if path == "container.namespaces":  # always in the document (Stockade has flags for two of them)
        return "requested" if (value or {}).get("network") == "host" else "engine default"
    return "requested" if value is not None else "engine default"


def explain(ctx: Context) -> int:
    from engine.errors import StockadeError
    from stockade import gate
    from stockade.commands.containers import run_request, with_config
    from stockade.run import resolve

    try:
        req = with_config(ctx, run_request(ctx.args))
        resolved = resolve(ctx, req)
        req, inherited = gate.pinned(ctx, req)
        subject = gate.subject_of(ctx, req, resolved)
        requested = gate.request_document(req, subject, rootless=ctx.paths.rootless, inherited=inherited)
        judgement = gate.judge(ctx, req, subject, requested)
    except gate.PolicyDenied as exc:
        sys.stderr.write(f"{exc}\n")
        if ctx.output == "json":
            print_json({"image": {"reference": req.image}, "decision": {"allowed": False, "message": str(exc)}})
        return EXIT_DENIED
    except StockadeError as exc:
        raise ExplainError(str(exc)) from None
    decision = judgement.decision
    container = judgement.document["container"]
    admitted, hardening = gate.effective(req, container, ctx)
    engine = {"user": admitted.options.user or "(the image's USER)", "runAsNonRoot": admitted.options.run_as_non_root,
              "readOnlyRootFilesystem": admitted.options.read_only, "capabilities": hardening.capabilities,
              "seccomp": hardening.seccomp_profile or "unconfined", "noNewPrivileges": hardening.no_new_privileges,
              "maskedPaths": hardening.masked_paths}
    if ctx.output == "json":
        print_json({"image": judgement.document["image"], "policy": judgement.policy.label,
                    "profile": judgement.policy.profile, "requested": judgement.requested["container"],
                    "effective": container, "applied": judgement.applied, "engine": engine,
                    "decision": decision.as_dict()})
    else:
        _table(judgement, engine)
    return EXIT_ALLOWED if decision.allowed else EXIT_DENIED


def _table(judgement: Any, engine: Mapping[str, Any]) -> None:
    image, decision = judgement.document["image"], judgement.decision
    container, requested = judgement.document["container"], judgement.requested["container"]
    signers = [f"key {s['keyId'][:16]}…" if s["kind"] == "key" else f"{s['subject']} ({s['issuer']})"
               for s in image.get("signatures") or []]
    verification = image.get("verification") or {}
    print(f"image:       {image['reference']}")
    print(f"digest:      {image.get('digest') or '(none)'}")
    print(f"policy:      {judgement.policy.label} (profile {judgement.policy.profile or 'none'})")
    print(f"signatures:  {', '.join(dict.fromkeys(signers)) or ('none valid' if 'verification' in image else 'none required')}"
          + (f" (verification failed: {verification['error']})" if verification.get("error") else ""))
    print()
    rows = []
    user = image.get("config", {}).get("User") or "root"
    for label, path, show in SETTINGS:
        value = (", ".join(engine["capabilities"]) or "none") if show is None else show(container)
        if label == "user" and not value:
            value = f"{user} (the image's USER)"
        rows.append({"setting": label, "effective": value, "from": _origin(path, judgement.applied, requested)})
    print_table(rows, [("setting", "setting"), ("effective", "effective"), ("from", "from")])
    print()
    for r in decision.warnings:
        print(f"warning: [{r.finding.rule}] {r.finding.message}")
    print(decision.summary())
