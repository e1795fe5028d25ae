"""The OCI distribution client (see ``client.py``); the names other packages use are re-exported here.

Exports load on first use (PEP 562), so importing the data model (``engine.registry.manifest``) for
a cached image does not pull in ``http.client`` and ``ssl``: ``stockade run`` of a local image
never touches the network code.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BlobReader": "client", "ManifestResult": "client", "RegistryClient": "client",
    "ResolvedImage": "client", "Credentials": "credentials", "CredentialStore": "credentials",
    "AuthError": "errors", "ManifestUnknownError": "errors", "RegistryError": "errors",
    "TLSError": "errors", "UnsupportedMediaTypeError": "errors", "VerificationError": "errors",
    "Descriptor": "manifest", "ImageIndex": "manifest", "ImageManifest": "manifest",
    "parse_manifest": "manifest", "Platform": "platform", "PlatformError": "platform",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"engine.registry.{module}"), name)
