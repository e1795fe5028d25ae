"""The OCI distribution client (see ``client.py``); the names other packages use are re-exported here."""

from engine.registry.client import BlobReader, ManifestResult, RegistryClient, ResolvedImage
from engine.registry.credentials import Credentials, CredentialStore
from engine.registry.errors import (AuthError, ManifestUnknownError, RegistryError, TLSError,
                                    UnsupportedMediaTypeError, VerificationError)
from engine.registry.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from engine.registry.platform import Platform, PlatformError

__all__ = [
    "AuthError", "BlobReader", "Credentials", "CredentialStore", "Descriptor", "ImageIndex",
    "ImageManifest", "ManifestResult", "ManifestUnknownError", "Platform", "PlatformError",
    "RegistryClient", "RegistryError", "ResolvedImage", "TLSError", "UnsupportedMediaTypeError",
    "VerificationError", "parse_manifest",
]
