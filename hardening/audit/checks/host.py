"""Host checks: mounts, kernel audit rules, kernel features, sysctls, subordinate id ranges."""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Any, Mapping

from hardening.audit.checks.paths import resolve
from hardening.audit.model import Evidence, Skip, Verdict, failed, passed
from hardening.audit.registry import implements


@implements("separate_mount")
def separate_mount(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    """A path whose filling-up must not fill ``/`` lives on a mount of its own."""
    path = resolve(view, params["path"])[0]
    mount = view.host.mount_of(path)
    ev = Evidence("mountinfo", path, f"on {mount.point} ({mount.fstype} {mount.source})",
                  "a mount other than /")
    if mount.point == "/":
        return failed(f"{path} is on the root filesystem", ev)
    return passed(f"{path} is on its own mount {mount.point}", ev)


def _group_members(view: Any, gid: int) -> tuple[str, list[str]]:
    """(group name, members): supplementary members from /etc/group and users whose primary it is."""
    name, members = str(gid), []
    for line in (view.host.read_text("/etc/group") or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2] == str(gid):
            name = fields[0]
            members += [m for m in fields[3].split(",") if m]
    for line in (view.host.read_text("/etc/passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[3] == str(gid) and fields[0] != "root":
            members.append(fields[0])
    return name, sorted(set(members))


@implements("HOST-003")
def trusted_group(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    """Members of a group owning the store or state directories control every container."""
    if view.paths.rootless:
        raise Skip("a rootless engine's directories belong to one user")
    evidence, bad = [], []
    for name in ("store", "runroot"):
        path = resolve(view, name)[0]
        info = view.host.stat(path)
        if info is None or info.gid == 0:
            continue
        group, members = _group_members(view, info.gid)
        evidence.append(Evidence("file", path, f"group {group}: {', '.join(members) or 'no members'}",
                                 "group root, or a group without members"))
        if members:
            bad.append(f"{path} (group {group}: {', '.join(members)})")
    if not evidence:
        paths = [resolve(view, n)[0] for n in ("store", "runroot")]
        if all(view.host.stat(p) is None for p in paths):
            raise Skip(f"neither {paths[0]} nor {paths[1]} exists yet")
        return passed("the store and state directories belong to group root")
    if bad:
        return failed("users outside root control the engine's directories: " + "; ".join(bad),
                      *evidence)
    return passed("no user is a member of the groups owning the engine's directories", *evidence)


@implements("HOST-004")
def auditd(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    """The kernel audit subsystem has rules loaded (the prerequisite of the rule checks)."""
    try:
        rules = view.audit_rules()
    except Skip as exc:
        if "not installed" in str(exc):
            return failed("auditd is not installed",
                          Evidence("command", "auditctl -l", "not found", "loaded rules"))
        raise
    ev = Evidence("command", "auditctl -l", f"{len(rules)} rules", "at least one rule")
    if not rules:
        return failed("no audit rules are loaded", ev)
    return passed(f"{len(rules)} audit rules are loaded", ev)


def rule_paths(rule: str) -> list[str]:
    """Paths an audit rule watches: ``-w PATH``, ``-F path=PATH``, ``-F dir=PATH``."""
    try:
        words = shlex.split(rule)
    except ValueError:
        return []
    out = []
    for flag, value in zip(words, words[1:]):
        if flag == "-w":
            out.append(value.rstrip("/") or "/")
        elif flag == "-F" and value.split("=", 1)[0] in ("path", "dir"):
            out.append(value.split("=", 1)[1].rstrip("/") or "/")
    return out


def _covered(path: str, watched: list[str]) -> bool:
    target = PurePosixPath(path)
    return any(target == PurePosixPath(w) or PurePosixPath(w) in target.parents for w in watched)


@implements("audit_rule")
def audit_rule(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    """Every path named by ``params["paths"]`` is covered by a loaded watch or path rule."""
    paths = [p for name in params["paths"] for p in resolve(view, name)]
    if not paths:
        raise Skip("none of the paths this check watches exist here")
    watched = [w for rule in view.audit_rules() for w in rule_paths(rule)]
    missing = [p for p in paths if not _covered(p, watched)]
    ev = [Evidence("command", "auditctl -l", "watched" if p not in missing else "no rule",
                   f"-w {p} -p wa -k stockade") for p in paths]
    if missing:
        return failed(f"no audit rule watches {', '.join(missing)}", *ev)
    return passed(f"audit rules watch {', '.join(paths)}", *ev)


@implements("HOST-011")
def rules_not_loaded(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    """Rules written to rules.d for Stockade's paths are loaded (augenrules was run)."""
    ours = [p for name in params["paths"] for p in resolve(view, name)]
    loaded = {w for rule in view.audit_rules() for w in rule_paths(rule)}
    stale = []
    for path, rules in view.rules_files().items():
        for rule in rules:
            for w in rule_paths(rule):
                if w not in loaded and any(_covered(p, [w]) or _covered(w, [p]) for p in ours):
                    stale.append((path, w))
    if stale:
        return failed("audit rules on disk are not loaded: "
                      + ", ".join(f"{w} ({f})" for f, w in stale),
                      *(Evidence("file", f, f"-w {w}", "loaded by auditctl") for f, w in stale),
                      location=stale[0][0])
    return passed("every rule on disk for Stockade's paths is loaded")


@implements("sysctl")
def sysctl(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    """A kernel setting compared as an integer: ``op`` is one of >=, ==, <=."""
    name, op, want = params["name"], params["op"], int(params["value"])
    raw = view.host.sysctl(name)
    expected = f"{op} {want}"
    locator = "/proc/sys/" + name.replace(".", "/")
    if raw is None:
        if params.get("missing") == "fail":
            return failed(f"the kernel has no {name} ({params.get('missing_means', 'not enforced')})",
                          Evidence("sysctl", name, "absent", expected), location=locator)
        raise Skip(f"the kernel has no {name}")
    try:
        value = int(raw.split()[0])
    except (ValueError, IndexError):
        return failed(f"{name} has a non-numeric value {raw!r}", Evidence("sysctl", name, raw, expected))
    ok = {">=": value >= want, "==": value == want, "<=": value <= want}[op]
    ev = Evidence("sysctl", name, str(value), expected)
    if ok:
        return passed(f"{name} = {value}", ev, location=locator)
    return failed(f"{name} = {value}, expected {expected}", ev, location=locator)


@implements("HOST-013")
def seccomp(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    status = view.host.read_text("/proc/self/status") or ""
    actions = (view.host.read_text("/proc/sys/kernel/seccomp/actions_avail") or "").split()
    has_field = any(line.startswith("Seccomp:") for line in status.splitlines())
    ev = Evidence("file", "/proc/sys/kernel/seccomp/actions_avail", " ".join(actions) or "absent",
                  "kill_process … allow")
    if has_field and actions:
        return passed("the kernel filters system calls with seccomp", ev)
    return failed("the kernel has no seccomp filter support", ev)


LSMS = ("apparmor", "selinux", "smack", "tomoyo")


@implements("HOST-014")
def lsm(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    listed = view.host.read_text("/sys/kernel/security/lsm")
    if listed is not None:
        active = [m for m in listed.strip().split(",") if m in LSMS]
        ev = Evidence("file", "/sys/kernel/security/lsm", listed.strip() or "empty",
                      "one of " + ", ".join(LSMS))
        if active:
            return passed(f"mandatory access control: {', '.join(active)}", ev)
        return failed("no mandatory access control module is active", ev)
    apparmor = (view.host.read_text("/sys/module/apparmor/parameters/enabled") or "").strip()
    if apparmor == "Y":
        return passed("AppArmor is enabled",
                      Evidence("file", "/sys/module/apparmor/parameters/enabled", "Y", "Y"))
    if view.host.stat("/sys/fs/selinux/enforce") is not None:
        return passed("SELinux is enabled", Evidence("file", "/sys/fs/selinux/enforce", "present"))
    return failed("no mandatory access control module is active (securityfs not mounted, "
                  "no AppArmor, no SELinux)",
                  Evidence("file", "/sys/kernel/security/lsm", "absent", "apparmor or selinux"))


@implements("HOST-015")
def cgroup_v2(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    mounts = view.host.mounts()
    v1 = sorted({m.point for m in mounts if m.fstype == "cgroup"})
    v2 = [m.point for m in mounts if m.fstype == "cgroup2"]
    ev = Evidence("mountinfo", "/proc/self/mountinfo",
                  f"cgroup2 at {', '.join(v2) or 'none'}; cgroup v1 at {len(v1)} mounts",
                  "cgroup2 at /sys/fs/cgroup, no v1 hierarchies")
    if v2 and not v1:
        return passed("the unified cgroup v2 hierarchy is in use", ev)
    layout = "hybrid v1/v2" if v2 else ("v1" if v1 else "no cgroup filesystem")
    return failed(f"cgroup layout is {layout}", ev)


def _ranges(text: str) -> list[tuple[str, int, int]]:
    out = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            out.append((fields[0], int(fields[1]), int(fields[2])))
    return out


@implements("HOST-029")
def subid_overlap(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    """Subordinate ranges of two users, or of a user and a real account, must not overlap."""
    passwd_ids = {int(f[2]): f[0] for line in (view.host.read_text("/etc/passwd") or "").splitlines()
                  if len(f := line.split(":")) >= 3 and f[2].isdigit()}
    problems, seen_any = [], False
    for path in ("/etc/subuid", "/etc/subgid"):
        text = view.host.read_text(path)
        if text is None:
            continue
        seen_any = True
        ranges = _ranges(text)
        for i, (user, start, count) in enumerate(ranges):
            for other, ostart, ocount in ranges[i + 1:]:
                if other != user and start < ostart + ocount and ostart < start + count:
                    problems.append(f"{path}: {user} and {other} share ids")
            owned = [name for uid, name in passwd_ids.items() if start <= uid < start + count]
            if owned:
                problems.append(f"{path}: {user}'s range holds the ids of {', '.join(sorted(owned))}")
    if not seen_any:
        raise Skip("/etc/subuid and /etc/subgid do not exist (no rootless users)")
    if problems:
        return failed("; ".join(problems), *(Evidence("file", p.split(":")[0], p) for p in problems),
                      location=problems[0].split(":")[0])
    return passed("subordinate id ranges are disjoint and hold no real account")
