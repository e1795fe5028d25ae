"""The container's seccomp program, compiled by ``hardening.seccomp`` and kept in its cache.

Two sources: the bundle's own ``linux.seccomp`` (what containerd's CRI plugin and podman write), or a
profile the node policy added (RuntimeDefault: Docker's profile expanded for the container's
capabilities, as ``stockade run`` uses it). The bundle's document is written once under the cache as a
content-addressed file, so it goes through exactly the path a ``--security-opt seccomp=FILE`` profile
takes: validated, expanded, compiled with libseccomp (binary tree, ENOSYS for syscalls newer than the
profile), cached by content, capabilities, architecture, kernel and libseccomp version. The second
container with the same profile reads one small file and loads no libseccomp binding.

The OCI fields the compiler has no use for are dropped with a note: ``flags`` (this runtime loads the
filter without any), ``listenerPath`` (``SCMP_ACT_NOTIFY`` is refused as an unknown action).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from engine.atomicfile import write_atomic


def _inline_profile(doc: dict[str, Any], cache: Path) -> Path:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    path = cache / "profiles" / f"{hashlib.sha256(raw).hexdigest()}.json"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, raw, mode=0o600)
    return path


def program(source: tuple[str, Any] | None, caps: list[str], cache: Path) -> bytes:
    """The BPF program for ``source`` (``("inline", linux.seccomp)`` or ``("profile", name or path)``);
    empty for none."""
    if source is None:
        return b""
    from hardening.seccomp import compiled_filter

    kind, value = source
    name = str(_inline_profile(value, cache)) if kind == "inline" else str(value)
    compiled = compiled_filter(name, caps, cache)
    return compiled.read_bytes() if compiled is not None else b""


def ignored_fields(doc: dict[str, Any]) -> list[str]:
    """The ``linux.seccomp`` fields this runtime does not apply."""
    return [k for k in ("flags", "listenerPath", "listenerMetadata") if doc.get(k)]
