"""Everything a check may look at, in one injectable object.

``AuditView`` bundles the host view, the command runner, the engine's effective configuration and
paths, and the image, container and signature sources. ``for_machine`` builds the real one; tests
build theirs from fixture trees and documents. Checks never reach past it.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.config import Config, Paths
from hardening.audit.hostview import CommandRunner, HostView, SubprocessRunner
from hardening.audit.model import CheckError, Skip
from hardening.audit.sources import EngineContainers, StoreImages
from hardening.audit.targets import ContainerSource, ImageSource, SignatureVerifier


@dataclass
class AuditView:
    """The machine under audit, as checks read it."""

    host: HostView
    runner: CommandRunner
    paths: Paths
    config: Config | None  # None when the configuration does not load (config_error says why)
    images: ImageSource
    containers: ContainerSource
    config_error: str | None = None
    signatures: SignatureVerifier | None = None
    # Executables and package directories the engine runs as (must not be writable by others).
    binaries: tuple[str, ...] = ()
    owner_uid: int = 0  # who should own Stockade's files: root, or the rootless user
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def require_config(self) -> Config:
        """The effective configuration, or ERROR for checks that need it when it does not load."""
        if self.config is None:
            raise CheckError(f"the configuration does not load: {self.config_error}")
        return self.config

    def audit_rules(self) -> list[str]:
        """Loaded kernel audit rules (``auditctl -l``), read once per audit."""
        if "auditctl" not in self._memo:
            self._memo["auditctl"] = self._load_audit_rules()
        value = self._memo["auditctl"]
        if isinstance(value, Exception):
            raise value
        return list(value)

    def _load_audit_rules(self) -> list[str] | Exception:
        if not self.host.live:
            return Skip("loaded audit rules are only readable on the running host (--host-root given)")
        try:
            res = self.runner.run(["auditctl", "-l"])
        except FileNotFoundError:
            return Skip("auditctl is not installed (install auditd to load audit rules)")
        except CheckError as exc:
            return exc
        if res.returncode != 0:
            return CheckError(f"auditctl -l failed ({res.returncode}): {res.stderr.strip()[:200]}")
        return [ln.strip() for ln in res.stdout.splitlines()
                if ln.strip() and ln.strip() != "No rules"]

    def rules_files(self) -> dict[str, list[str]]:
        """Rules written in /etc/audit/rules.d/*.rules and /etc/audit/audit.rules, by file."""
        out: dict[str, list[str]] = {}
        files = [f"/etc/audit/rules.d/{n}" for n in self.host.listdir("/etc/audit/rules.d")
                 if n.endswith(".rules")] + ["/etc/audit/audit.rules"]
        for path in files:
            text = self.host.read_text(path)
            if text is not None:
                out[path] = [ln.strip() for ln in text.splitlines()
                             if ln.strip() and not ln.lstrip().startswith("#")]
        return out


def engine_binaries(packages: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The interpreter, the ``stockade`` launcher, our package directories and ``packages`` (the
    caller's own, since ``hardening`` may not import the command line)."""
    import engine
    import hardening

    found = [os.path.realpath(sys.executable)]
    launcher = shutil.which("stockade")
    if launcher:
        found.append(os.path.realpath(launcher))
    found += [str(Path(m.__file__).resolve().parent) for m in (engine, hardening) if m.__file__]
    found += list(packages)
    return tuple(dict.fromkeys(found))


def for_machine(paths: Paths, config: Config | None, config_error: str | None = None, *,
                host_root: str = "/", images: ImageSource | None = None,
                packages: tuple[str, ...] = (), signatures: SignatureVerifier | None = None) -> AuditView:
    """The view of this machine (or of a host filesystem mounted at ``host_root``); ``signatures`` is
    the caller's verifier for IMG-009 (``hardening`` cannot build one: it imports neither trust nor
    policies)."""
    return AuditView(
        host=HostView(host_root), runner=SubprocessRunner(), paths=paths, config=config,
        config_error=config_error,
        images=images if images is not None else StoreImages(paths, config),
        containers=EngineContainers(paths),
        signatures=signatures, binaries=engine_binaries(packages) if host_root == "/" else (),
        owner_uid=os.geteuid() if paths.rootless else 0)
