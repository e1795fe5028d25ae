"""The Sigstore ``trusted_root.json`` a verification trusts: Fulcio CAs, Rekor, CT log and TSA keys.

Without ``--trusted-root`` Stockade uses the public-good root that sigstore-python ships inside its
package (``sigstore/_store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json``); the file is
located without importing sigstore. The root is part of the verification cache key, and a cache hit
is the warm ``run`` path, so a loaded root is hashed once and the default root is read once per
process (``TrustedRoot.default()``): a hit then reads no root file and hashes nothing. The root is
only parsed by sigstore-python when a certificate or a log entry actually has to be checked.

A private Sigstore instance (or an air-gapped copy of the public one) is just another file; nothing
in it is fetched from the network (``tlogs[].baseUrl`` is never contacted).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from engine.boundedio import parse_json
from trust.errors import TrustError
from trust.untrusted import read_bounded

MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
_PUBLIC_GOOD_DIR = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
MAX_ROOT_SIZE = 4 * 1024 * 1024


def public_good_path() -> Path:
    """Where sigstore-python keeps its embedded public-good trusted root."""
    spec = importlib.util.find_spec("sigstore")
    if spec is None or not spec.submodule_search_locations:
        raise TrustError("sigstore-python is not installed, so there is no default trusted root "
                         "(pass --trusted-root FILE)")
    return Path(list(spec.submodule_search_locations)[0]) / "_store" / _PUBLIC_GOOD_DIR / "trusted_root.json"


@dataclass(frozen=True)
class TrustedRoot:
    """A trusted root's exact bytes, where they came from, and (lazily) sigstore's parsed form."""

    path: Path
    data: bytes = field(repr=False)

    @classmethod
    def load(cls, path: Path | None = None) -> "TrustedRoot":
        """Read and sanity-check a trusted root (media type, JSON shape) without sigstore."""
        path = path or public_good_path()
        data = read_bounded(path, MAX_ROOT_SIZE, "trusted root")
        doc = parse_json(data, what=f"trusted root {path}", error=TrustError)
        if not isinstance(doc, dict):
            raise TrustError(f"trusted root {path} is not a JSON object")
        if doc.get("mediaType") != MEDIA_TYPE:
            raise TrustError(f"trusted root {path}: unsupported mediaType {doc.get('mediaType')!r:.80} "
                             f"(expected {MEDIA_TYPE})")
        return cls(Path(path), data)

    @classmethod
    def default(cls) -> "TrustedRoot":
        """The public-good root, loaded once per process (see the module docstring). It belongs to
        the installed sigstore-python, so it changes only with an upgrade, which a new process sees."""
        return _default_root()

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the exact bytes (the verification cache's key), computed on first use."""
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def document(self) -> dict[str, Any]:
        return json.loads(self.data)  # type: ignore[no-any-return]

    def sigstore(self) -> Any:
        """sigstore-python's ``TrustedRoot`` for these bytes (imports sigstore)."""
        from sigstore.errors import Error
        from sigstore.models import TrustedRoot as SigstoreTrustedRoot
        from sigstore_models.trustroot import v1 as trustroot_v1

        try:
            return SigstoreTrustedRoot(trustroot_v1.TrustedRoot.from_json(self.data))
        except (Error, ValueError) as exc:
            raise TrustError(f"trusted root {self.path} cannot be used: {exc}") from None


@functools.cache
def _default_root() -> TrustedRoot:
    return TrustedRoot.load()
