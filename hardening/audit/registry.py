"""The check registry: metadata as data (``checks.toml``), behaviour as code (``checks/``).

Titles, severities, levels, benchmark references and remediation live in ``checks.toml`` so a new
benchmark release is an edit of data. Each entry names its implementation: a function registered
under the check's own ID, or a shared kind (``sysctl``, ``file_mode`` …) driven by the entry's
``params``. Loading validates the whole file: unique IDs that are never reused (``retired``), every
field present, every implementation known. A registry that does not validate is a bug, not input.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Iterable, Mapping

from hardening.audit.model import DOMAINS, Check, Severity, Verdict

CheckFn = Callable[[Any, Any, Mapping[str, Any]], Verdict]
IMPLS: dict[str, CheckFn] = {}
ID_RE = re.compile(r"^(HOST|ENG|FILE|IMG|CTR|OPS)-\d{3}$")
PREFIX_DOMAIN = {"HOST": "host", "ENG": "engine", "FILE": "files", "IMG": "images",
                 "CTR": "containers", "OPS": "operations"}
REQUIRED = ("id", "domain", "title", "severity", "level", "automated", "rationale", "remediation",
            "snippet", "impact")
PROFILES = {"level1": 1, "level2": 2}


def implements(*names: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under check IDs or shared kind names."""
    def deco(fn: CheckFn) -> CheckFn:
        for name in names:
            if name in IMPLS:
                raise RuntimeError(f"two implementations named {name}")
            IMPLS[name] = fn
        return fn
    return deco


@dataclass(frozen=True)
class Registry:
    """Every check, in ID order, and the IDs retired for good."""

    checks: tuple[Check, ...]
    retired: frozenset[str]
    benchmark: str

    def get(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)

    def select(self, domains: Iterable[str], profile: str = "level2",
               include: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[Check]:
        """The checks to run: in ``domains``, at or below the profile's level, then --check/--skip.

        ``include`` and ``exclude`` hold IDs or prefixes (``CTR``, ``HOST-01``); a pattern that
        matches no check is a ValueError, so a typo cannot silently run everything.
        """
        level = PROFILES[profile]
        include, exclude = [p.upper() for p in include], [p.upper() for p in exclude]
        for pattern in include + exclude:
            if not any(c.id.startswith(pattern) for c in self.checks):
                raise ValueError(f"no check ID starts with {pattern!r}")
        wanted = set(domains)
        chosen = [c for c in self.checks if c.domain in wanted and c.level <= level]
        if include:
            chosen = [c for c in chosen if any(c.id.startswith(p) for p in include)]
        return [c for c in chosen if not any(c.id.startswith(p) for p in exclude)]


def _build(entry: Mapping[str, Any], retired: frozenset[str]) -> Check:
    missing = [k for k in REQUIRED if k not in entry or entry[k] in ("", None)]
    cid = entry.get("id", "?")
    if missing:
        raise ValueError(f"check {cid}: missing {', '.join(missing)}")
    if not ID_RE.match(cid):
        raise ValueError(f"check {cid}: ID must look like HOST-001")
    if cid in retired:
        raise ValueError(f"check {cid}: the ID is retired and must not be reused")
    if entry["domain"] not in DOMAINS or PREFIX_DOMAIN[cid.split("-")[0]] != entry["domain"]:
        raise ValueError(f"check {cid}: domain {entry['domain']!r} does not match its ID")
    if entry["level"] not in (1, 2):
        raise ValueError(f"check {cid}: level must be 1 or 2")
    impl = entry.get("impl", cid)
    if impl not in IMPLS:
        raise ValueError(f"check {cid}: no implementation named {impl}")
    return Check(id=cid, title=entry["title"], domain=entry["domain"],
                 severity=Severity.parse(entry["severity"]), level=entry["level"],
                 automated=bool(entry["automated"]), rationale=entry["rationale"].strip(),
                 remediation=entry["remediation"].strip(), snippet=entry["snippet"].strip("\n"),
                 impact=entry["impact"].strip(), refs=dict(entry.get("refs", {})), impl=impl,
                 params=dict(entry.get("params", {})))


@lru_cache(maxsize=1)
def load_registry() -> Registry:
    """Parse and validate ``checks.toml`` and bind each entry to its implementation (once)."""
    from hardening.audit import checks  # noqa: F401 - importing registers the implementations

    doc = tomllib.loads(resources.files("hardening.audit").joinpath("checks.toml").read_text())
    retired = frozenset(doc.get("retired", []))
    built = [_build(e, retired) for e in doc["check"]]
    seen: set[str] = set()
    for c in built:
        if c.id in seen:
            raise ValueError(f"check {c.id} is defined twice")
        seen.add(c.id)
    return Registry(tuple(sorted(built, key=lambda c: c.id)), retired, doc["benchmark"])


def run_check(check: Check, view: Any, target: Any) -> Verdict:
    """Call the check's implementation with its parameters."""
    return IMPLS[check.impl](view, target, check.params)
