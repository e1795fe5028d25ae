"""Registry plumbing shared by the signature layouts: tag names, small blobs, and safe tag updates.

Signatures live beside the image, addressed by the image's digest: ``sha256-<hex>.sig`` (legacy
cosign signatures), ``sha256-<hex>.att`` (legacy attestations) and ``sha256-<hex>`` (the OCI 1.1
referrers tag schema, for registries without the referrers API).

The registry offers no compare-and-swap on tags (distribution 2.8 has no conditional PUT), so two
signers updating the same tag could each overwrite the other's entry. :func:`update_tag` makes the
read-modify-write converge instead: write, wait a settle interval several times longer than the
read-to-write window just measured, re-read, and start over if our entry was dropped. A concurrent
writer that read the old state before our write has written by then, so its overwrite is seen and
repaired; the other writer runs the same loop for its own entry. The loss the loop cannot see is a
writer stalled between its read and its write for longer than the settle interval.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Callable

from engine.reference import Reference
from engine.registry import Descriptor, ManifestResult, ManifestUnknownError, RegistryClient
from engine.registry import mediatypes as mt
from engine.registry.digest import compute

from trust.errors import TrustError

MIN_SETTLE = 0.25  # seconds
MAX_ATTEMPTS = 12


def tag_for(digest: str, suffix: str = "") -> str:
    """``sha256:abc…`` -> ``sha256-abc…`` plus ``.sig``/``.att``/nothing."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded}{suffix}"


def at_tag(ref: Reference, tag: str) -> Reference:
    return ref.without_digest().with_tag(tag)


def at_digest(ref: Reference, digest: str) -> Reference:
    return ref.without_digest().with_digest(digest)


def get_optional(client: RegistryClient, ref: Reference) -> ManifestResult | None:
    """The manifest ``ref`` names, or None when the registry has none."""
    try:
        return client.get_manifest(ref)
    except ManifestUnknownError:
        return None


def push_blob(client: RegistryClient, ref: Reference, data: bytes, media_type: str) -> Descriptor:
    """Make a small blob exist in ``ref``'s repository; return its descriptor."""
    desc = Descriptor(media_type=media_type, digest=compute(data), size=len(data))
    client.push_blob(ref, desc, lambda: _reader(data))
    return desc


def _reader(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


Build = Callable[[ManifestResult | None], tuple[bytes, str] | None]


def update_tag(client: RegistryClient, ref: Reference, build: Build,
               present: Callable[[ManifestResult], bool], *, what: str) -> None:
    """Read-modify-write the manifest at tag ``ref`` until ``present`` holds after a settle delay.

    ``build(current)`` returns the new (bytes, media type), or None when ``current`` already holds
    our entry. See the module docstring for why this converges with concurrent writers.
    """
    for _ in range(MAX_ATTEMPTS):
        started = time.monotonic()
        current = get_optional(client, ref)
        change = build(current)
        if change is not None:
            client.put_manifest(ref, *change)
        window = time.monotonic() - started
        # Jitter keeps two writers from retrying in lockstep; it needs no cryptographic randomness.
        time.sleep(max(MIN_SETTLE, 4 * window) * (1 + random.random()))  # nosec B311
        check = get_optional(client, ref)
        if check is not None and present(check):
            return
    raise TrustError(f"{what}: {ref} kept losing our entry to concurrent writers after "
                     f"{MAX_ATTEMPTS} attempts; try again")


EMPTY_CONFIG = b"{}"


def empty_config(client: RegistryClient, ref: Reference) -> Descriptor:
    """The OCI 1.1 empty descriptor (``{}``), pushed so the manifest's config exists."""
    return push_blob(client, ref, EMPTY_CONFIG, mt.OCI_EMPTY)
