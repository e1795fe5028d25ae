"""Image configurations (OCI image-spec config.md): checked parsing, diff_ids and chain ids.

The config is what ``run`` executes (user, entrypoint, environment), and its ``rootfs.diff_ids`` are
what every unpacked layer is checked against, so it is validated before anything relies on it.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from engine.boundedio import parse_json
from engine.reference import ReferenceError, validate_digest
from engine.registry.errors import VerificationError
from engine.registry.platform import Platform


def parse_config(raw: bytes, *, where: str) -> dict[str, Any]:
    """Parse an image config; raise VerificationError naming ``where`` if it is malformed."""
    doc = parse_json(raw, what=f"{where}: the image config", error=VerificationError)
    if not isinstance(doc, dict):
        raise VerificationError(f"{where}: the image config must be a JSON object")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise VerificationError(f"{where}: the image config needs rootfs.type \"layers\"")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise VerificationError(f"{where}: rootfs.diff_ids must be a list of digests")
    try:
        for d in diff_ids:
            validate_digest(d, what="diff_id")
    except ReferenceError as exc:
        raise VerificationError(f"{where}: {exc}") from None
    for key in ("config", "history"):
        if doc.get(key) is not None and not isinstance(doc[key], dict if key == "config" else list):
            raise VerificationError(f"{where}: '{key}' has the wrong type")
    return doc


def diff_ids(config: dict[str, Any]) -> list[str]:
    return list(config["rootfs"]["diff_ids"])


def chain_ids(diffs: Sequence[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff in diffs:
        if not out:
            out.append(diff)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out


def config_platform(config: dict[str, Any]) -> Platform:
    def text(key: str) -> str:
        value = config.get(key)
        return value if isinstance(value, str) else ""
    return Platform(os=text("os"), architecture=text("architecture"), variant=text("variant"))


def platform_of(config: dict[str, Any]) -> str:
    parts = [config.get("os"), config.get("architecture"), config.get("variant")]
    return "/".join(p for p in parts if isinstance(p, str) and p)
