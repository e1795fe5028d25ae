"""File checks: owner and permission bits of Stockade's files, compared as octal bit masks.

A file passes when ``mode & ~allowed == 0``: it has no permission bit the allowed mode lacks.
docker-bench compares modes as decimal numbers (``-le 644``), which passes 0570; a bit mask cannot.
"""

from __future__ import annotations

from typing import Any, Mapping

from hardening.audit.checks.paths import certs_roots, resolve
from hardening.audit.hostview import FileInfo
from hardening.audit.model import Evidence, Skip, Verdict, failed, passed
from hardening.audit.registry import implements


def _candidates(view: Any, params: Mapping[str, Any]) -> tuple[list[FileInfo], list[str]]:
    """The files a check covers (named paths, and entries found by walking a directory), and where
    it looked."""
    found: list[FileInfo] = []
    searched: list[str] = []
    for name in params.get("paths", ()):
        for path in resolve(view, name):
            searched.append(path)
            info = view.host.stat(path)
            if info is not None:
                found.append(info)
                if params.get("recurse") and info.kind == "dir":
                    found += [i for i in view.host.walk(path, params["recurse"]) if i.kind != "link"]
    under = params.get("under")
    if under:
        roots = certs_roots(view) if under["root"] == "certs" else resolve(view, under["root"])
        searched += roots
        for root in roots:
            for info in view.host.walk(root, under.get("depth", 3)):
                if under.get("kind", "file") != info.kind:
                    continue
                base = info.path.rsplit("/", 1)[-1]
                if not base.endswith(tuple(under.get("suffix", [""]))):
                    continue
                if not base.startswith(under.get("prefix", "")):
                    continue
                if "contains" in under and under["contains"] not in (view.host.read_text(info.path, 65536) or ""):
                    continue
                found.append(info)
    unique = {info.path: info for info in found}
    return list(unique.values()), searched


@implements("file_mode")
def file_mode(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    """Each covered file is owned by root (or the rootless user) and has no bit outside ``max_mode``
    (``rootless_max_mode`` for a rootless engine, where what others may merely read or traverse is
    already too much: a rootless store root is 0700, as podman's)."""
    allowed = int(params.get("rootless_max_mode", params["max_mode"]) if view.paths.rootless
                  else params["max_mode"], 8)
    files, searched = _candidates(view, params)
    if not files:
        raise Skip(f"no {params['what']} found (looked at {', '.join(searched) or 'nothing'})")
    owners = {0, view.owner_uid}
    bad, evidence = [], []
    for info in files:
        extra = info.mode & ~allowed
        wrong_owner = info.uid not in owners
        evidence.append(Evidence("file", info.path, f"{info.mode_text()} uid {info.uid}",
                                 f"{allowed:04o} or stricter, uid {view.owner_uid}"))
        if extra or wrong_owner:
            why = []
            if extra:
                why.append(f"mode {info.mode_text()} has {extra:04o} beyond {allowed:04o}")
            if wrong_owner:
                why.append(f"owned by uid {info.uid}")
            bad.append((info.path, ", ".join(why)))
    if bad:
        return failed("; ".join(f"{p}: {w}" for p, w in bad[:10])
                      + (f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""),
                      *evidence[:50], location=bad[0][0])
    return passed(f"{len(files)} {params['what']} checked: modes within {allowed:04o}",
                  *evidence[:50], location=files[0].path)
