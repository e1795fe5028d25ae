"""Names for the engine's paths, so ``checks.toml`` can say ``store`` instead of a literal path.

Literal absolute paths pass through; a name resolves against the effective ``Paths`` and
configuration of the view, so a rootless engine or a ``--root`` store is audited where it really is.
"""

from __future__ import annotations

from typing import Any

from hardening.audit.model import CheckError


def home_of(view: Any, uid: int) -> str | None:
    """The home directory of ``uid`` from the audited host's /etc/passwd."""
    for line in (view.host.read_text("/etc/passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2] == str(uid):
            return fields[5]
    return None


def certs_roots(view: Any) -> list[str]:
    """certs.d directories the registry client reads (configured ones first)."""
    extra = list(view.config.registries.certs_dirs) if view.config is not None else []
    return list(dict.fromkeys(extra + [str(view.paths.config_dir / "certs.d")]))


def resolve(view: Any, name: str) -> list[str]:
    """Host paths for a path name (``store``, ``runroot``, ``executables`` …) or a literal path."""
    p = view.paths
    if name.startswith("/"):
        return [name]
    simple = {"store": p.root, "runroot": p.runroot, "config_dir": p.config_dir, "cache": p.cache,
              "config_file": p.config_dir / "config.toml", "credentials": p.config_dir / "auth.json",
              "policies": p.config_dir / "policies", "seccomp": p.config_dir / "seccomp",
              "containers": p.root / "containers"}
    if name in simple:
        return [str(simple[name])]
    if name == "executables":
        return [b for b in view.binaries if (info := view.host.stat(b)) and info.kind == "file"]
    if name == "binaries":
        return list(view.binaries)
    if name == "docker_credentials":
        home = home_of(view, view.owner_uid)
        return [f"{home}/.docker/config.json"] if home else []
    raise CheckError(f"unknown path name {name!r} in checks.toml")
