"""The admission cache: an allowed decision of the ``run`` gate, reused while nothing it rests on changed.

Loading a policy, verifying signatures and evaluating cost more than starting a container (importing
the policy engine and ``cryptography`` alone is most of a warm run). Yet for the same request, the
same image digest and the same policy the answer is the same, so it is kept, like trust's positive
verdicts, and a warm ``run`` reads one small file instead of loading either.

An entry is found by SHA-256 over everything the decision is a function of: the request document as
asked (image name, digest and configuration, every container setting), the policy's name or its
file's path and content, the configuration the gate reads, and Stockade's version. It is used only

* before ``expires``: the earliest of the verification verdicts' expiry (an hour at most, less when
  TUF metadata expires sooner), an hour, and the end of the day (exceptions expire by date);
* while every file the loaded policy read is unchanged (``depends``: the policy file, the built-in
  profiles, key files, TUF root files, the Sigstore trusted root), each re-hashed on use.

Only allowed decisions are stored, so a refusal is always decided afresh. Entries are written
atomically, 0600, in a 0700 directory under ``Paths.cache``, and read only when this user wrote them
(``engine.cachefiles.read_private``): an entry another user could have written is a miss. This
module imports neither the policy engine nor trust.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.cachefiles import content_key, read_entry, write_entry

if TYPE_CHECKING:
    from policies import Policy
    from stockade.context import Context

FORMAT = 2  # 2: a policy's fallback user carries runAsNonRoot (entries of 1 lack it)
MAX_ENTRY_BYTES = 1024 * 1024
MAX_DEPENDENCY_BYTES = 16 * 1024 * 1024


def file_sha256(path: str) -> str | None:
    """The SHA-256 of a file's content, None when it cannot be read (or is implausibly large)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_DEPENDENCY_BYTES + 1)
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest() if len(data) <= MAX_DEPENDENCY_BYTES else None


def policy_identity(name: str) -> dict[str, Any] | None:
    """What names a policy without loading it: a file's real path and content hash, else the name as a
    built-in profile's (None when the file exists but cannot be read: the gate then reports why). A
    name that is neither never gets an entry: only an allowed decision is stored, and the policy
    loader refuses an unknown profile name. (Asking ``policies.profiles`` for its names would import
    ``importlib.resources`` on every run.)"""
    if not os.path.exists(name):  # resolve_policy's rule: an existing file wins over a profile name
        return {"builtin": name}
    path = os.path.realpath(name)
    digest = file_sha256(path)
    return None if digest is None else {"file": path, "sha256": digest}


def material(ctx: Context, policy: str, requested: dict[str, Any]) -> dict[str, Any] | None:
    """The key material of a request (None when the policy file cannot be read)."""
    from stockade import __version__

    identity = policy_identity(policy)
    if identity is None:
        return None
    containers = ctx.config.containers
    return {"format": FORMAT, "stockade": __version__, "policy": identity, "document": requested,
            "verify_signatures": ctx.config.policy.verify_signatures,
            "engine": {"seccomp_profile": containers.seccomp_profile,
                       "no_new_privileges": containers.no_new_privileges}}


def depends(policy: Policy) -> list[str]:
    """Every file the loaded ``policy`` rests on (see the module docstring)."""
    from importlib import resources

    found = [str(entry) for entry in resources.files("policies.profiles").iterdir()
             if entry.name.endswith(".yaml")]
    if not policy.source.startswith("builtin:"):
        found.append(os.path.realpath(policy.source))
    for req in policy.requirements:
        found += [k.path for k in req.keys if k.path]
        if req.tuf is not None:
            found.append(req.tuf.root)
        if req.identities:
            from trust.trustroot import public_good_path

            found.append(str(public_good_path()))
    return sorted(set(found))


class AdmissionCache:
    """Allowed decisions on disk (see the module docstring)."""

    ttl = 3600.0

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock

    @classmethod
    def for_paths(cls, cache_root: Path) -> "AdmissionCache":
        return cls(cache_root / "admission")

    @staticmethod
    def key(material: dict[str, Any]) -> str:
        return content_key(material)

    def end_of_day(self, now: float) -> float:
        """Local midnight after ``now``: exceptions expire by (local) date."""
        import datetime  # only when an entry is written

        today = datetime.datetime.fromtimestamp(now).date()
        return datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time()).timestamp()

    def get(self, material: dict[str, Any]) -> dict[str, Any] | None:
        """The cached result for ``material``, or None (missing, expired, stale or unreadable)."""
        key = self.key(material)
        entry = read_entry(self.directory / f"{key}.json", expect={"format": FORMAT, "key": key},
                           now=self.clock(), max_bytes=MAX_ENTRY_BYTES)  # only what this user wrote
        if entry is None:
            return None
        try:
            if any(file_sha256(p) != digest for p, digest in entry["depends"]):
                return None
            result = entry["result"]
        except (KeyError, TypeError, ValueError):
            return None
        return result if isinstance(result, dict) else None

    def put(self, material: dict[str, Any], result: dict[str, Any], *, depends: list[str],
            expires: float) -> None:
        """Store an allowed decision's ``result``; a file that cannot be read or a failure to write
        only means no entry (the cache saves time, nothing else)."""
        hashes = [(p, file_sha256(p)) for p in depends]
        if expires <= self.clock() or any(h is None for _, h in hashes):
            return
        key = self.key(material)
        entry = {"format": FORMAT, "key": key, "expires": expires, "stored": self.clock(),
                 "depends": hashes, "result": result}
        write_entry(self.directory / f"{key}.json", entry)
