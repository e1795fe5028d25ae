"""Engine checks: Stockade's effective configuration, as ``engine.config`` loads it."""

from __future__ import annotations

import json
from typing import Any, Mapping

from hardening.audit.checks.paths import resolve
from hardening.audit.model import Evidence, Skip, Verdict, failed, passed
from hardening.audit.registry import implements

LOOPBACK = ("localhost", "127.", "[::1]", "::1")


def _ev(key: str, observed: Any, expected: str) -> Evidence:
    return Evidence("engine-config", key, str(observed), expected)


def _location(view: Any) -> str | None:
    """The configuration file a fix belongs in (the last one read), if any."""
    sources = view.config.sources if view.config is not None else ()
    return sources[-1] if sources else None


@implements("config_flag")
def config_flag(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    """A configuration value must (``equals``) or must not (``not_in``) be certain values."""
    config = view.require_config()
    section, key = params["key"].split(".")
    value = getattr(getattr(config, section), key)
    if view.paths.rootless and params.get("rootless"):
        # A setting a rootless engine does not use (it always runs containers in the user's own
        # user namespace): the check's aim already holds, whatever the value.
        return passed(f"{params['key']} = {value!r}: {params['rootless']}",
                      _ev(params["key"], repr(value), "(ignored when rootless)"), location=_location(view))
    if "equals" in params:
        ok, expected = value == params["equals"], f"= {params['equals']!r}"
    else:
        ok, expected = value not in params["not_in"], f"not one of {params['not_in']}"
    ev = _ev(params["key"], repr(value), expected)
    if ok:
        return passed(f"{params['key']} = {value!r}", ev, location=_location(view))
    return failed(f"{params['key']} = {value!r}, expected {expected}", ev, location=_location(view))


@implements("config_bounds")
def config_bounds(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    """Numeric settings within [min, max]: a zero or huge limit is no limit."""
    config = view.require_config()
    bad, evidence = [], []
    for key, (low, high) in params["bounds"].items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        evidence.append(_ev(key, value, f"between {low} and {high}"))
        if not low <= value <= high:
            bad.append(f"{key} = {value} (allowed {low}..{high})")
    if bad:
        return failed("; ".join(bad), *evidence, location=_location(view))
    return passed("limits are set and bounded", *evidence, location=_location(view))


@implements("ENG-001")
def rootless(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    ev = Evidence("engine-config", "paths.rootless", str(view.paths.rootless), "True")
    if view.paths.rootless:
        return passed("the engine runs rootless", ev)
    return failed("the engine runs as root", ev)


@implements("ENG-004")
def insecure_registries(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    config = view.require_config()
    remote = [r for r in config.registries.insecure if not r.startswith(LOOPBACK)]
    ev = _ev("registries.insecure", list(config.registries.insecure), "empty or loopback only")
    if remote:
        return failed(f"plain HTTP or unverified TLS allowed for {', '.join(remote)}", ev,
                      location=_location(view))
    if config.registries.insecure:
        return passed("only loopback registries are insecure", ev, location=_location(view))
    return passed("no insecure registries", ev, location=_location(view))


@implements("ENG-005")
def storage_driver(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    config = view.require_config()
    driver = config.storage.driver
    ev = _ev("storage.driver", driver, "overlay (kernel overlayfs) or copy")
    if driver == "copy":
        return passed("the copy driver needs no kernel support", ev)
    if driver != "overlay":
        return failed(f"unknown storage driver {driver!r}", ev, location=_location(view))
    filesystems = view.host.read_text("/proc/filesystems") or ""
    if any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines()):
        return passed("overlay driver on a kernel with overlayfs", ev)
    return failed("the overlay driver is configured but the kernel has no overlayfs", ev,
                  Evidence("file", "/proc/filesystems", "no overlay", "overlay"))


@implements("ENG-007")
def seccomp_profile(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    config = view.require_config()
    profile = config.containers.seccomp_profile
    ev = _ev("containers.seccomp_profile", profile, "default, or a readable profile file")
    if profile == "unconfined":
        return failed("containers run without a seccomp filter by default", ev, location=_location(view))
    if profile == "default":
        return passed("the built-in seccomp profile applies by default", ev)
    text = view.host.read_text(profile)
    if text is None:
        return failed(f"seccomp profile {profile} does not exist", ev, location=_location(view))
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return failed(f"seccomp profile {profile} is not valid JSON: {exc}", ev, location=profile)
    if not isinstance(doc, dict) or "defaultAction" not in doc:
        return failed(f"seccomp profile {profile} has no defaultAction", ev, location=profile)
    if doc["defaultAction"] in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        return failed(f"seccomp profile {profile} allows every unlisted call", ev, location=profile)
    return passed(f"custom seccomp profile {profile} denies by default", ev)


@implements("ENG-012")
def config_valid(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    if view.config is None:
        return failed(f"the configuration does not load: {view.config_error}",
                      Evidence("engine-config", "load_config", str(view.config_error), "valid TOML"))
    files = ", ".join(view.config.sources) or "none (built-in defaults)"
    return passed(f"the configuration loads from {files}",
                  Evidence("engine-config", "sources", files, "valid"))


@implements("ENG-013")
def certs_dirs(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    config = view.require_config()
    configured = list(config.registries.certs_dirs)
    if not configured:
        raise Skip("registries.certs_dirs is not set")
    missing = [d for d in configured if (i := view.host.stat(d)) is None or i.kind != "dir"]
    ev = _ev("registries.certs_dirs", configured, "existing directories")
    if missing:
        return failed(f"configured certs.d directories do not exist: {', '.join(missing)}", ev,
                      location=_location(view))
    return passed("every configured certs.d directory exists", ev)


_WEAK_FS = ("tmpfs", "nfs", "nfs4", "cifs", "smb3", "9p")


@implements("ENG-015")
def store_filesystem(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    path = resolve(view, "store")[0]
    mount = view.host.mount_of(path)
    ev = Evidence("mountinfo", path, f"{mount.fstype} at {mount.point}", "a local disk filesystem")
    if mount.fstype in _WEAK_FS or mount.fstype.startswith("fuse"):
        return failed(f"the store is on {mount.fstype}", ev)
    return passed(f"the store is on {mount.fstype}", ev)


@implements("ENG-016")
def subid_size(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    """A rootless user needs 65536 subordinate ids to map an image's users (nobody = 65534)."""
    if not view.paths.rootless:
        raise Skip("the engine runs as root")
    user = None
    for line in (view.host.read_text("/etc/passwd") or "").splitlines():
        f = line.split(":")
        if len(f) >= 3 and f[2] == str(view.owner_uid):
            user = f[0]
    need = int(params["min"])
    short = []
    for path in ("/etc/subuid", "/etc/subgid"):
        total = 0
        for line in (view.host.read_text(path) or "").splitlines():
            f = line.strip().split(":")
            if len(f) == 3 and f[0] in (user, str(view.owner_uid)) and f[2].isdigit():
                total += int(f[2])
        if total < need:
            short.append(f"{path}: {total}")
    if short:
        return failed(f"user {user} has too few subordinate ids ({'; '.join(short)}; need {need})",
                      Evidence("file", "/etc/subuid", "; ".join(short), f">= {need}"),
                      location="/etc/subuid")
    return passed(f"user {user} has at least {need} subordinate uids and gids")


@implements("ENG-017")
def runroot_tmpfs(view: Any, _target: Any, _params: Mapping[str, Any]) -> Verdict:
    path = resolve(view, "runroot")[0]
    mount = view.host.mount_of(path)
    ev = Evidence("mountinfo", path, f"{mount.fstype} at {mount.point}", "tmpfs")
    if mount.fstype == "tmpfs":
        return passed("runtime state is on tmpfs and dies with the boot", ev)
    return failed(f"runtime state is on {mount.fstype}: stale state survives a reboot", ev)

