"""Stockade's Kubernetes admission webhook: the policy engine and image verifiers behind HTTPS.

The package composes ``policies`` and ``trust`` as ``stockade run`` and ``policy check`` do; it adds
no policy logic of its own. Modules, each named for what it holds:

* ``review``: AdmissionReview v1 in and out (no I/O);
* ``imagetrust``: the verification caches a server adds (in memory; read-only for dry runs) to
  ``stockade.verification``, the requirements -> trust -> input-document translation ``run`` shares;
* ``verifier``: verification on a worker pool, one flight per image, per-review deadlines;
* ``admit``: one review -> documents -> verification -> decisions -> one answer;
* ``metrics``: Prometheus text exposition; ``service``: the endpoints without transport;
* ``server``: HTTPS (TLS 1.2+, keep-alive, bounds, certificate reload).

``build_service`` wires them for ``stockade admission serve`` and for the benchmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.config import Config, Paths
    from policies import Policy
    from stockade.admission.service import AdmissionService


def build_service(policy: Policy, config: Config, paths: Paths, *, trusted_root: Path | None = None,
                  deadline: float = 8.0, workers: int = 8, use_cache: bool = True,
                  log_decisions: str = "all") -> AdmissionService:
    """An ``AdmissionService`` for ``policy``: a registry client whose network timeout fits inside
    ``deadline``, the verification cache under ``paths.cache`` (in memory too), the verifier pool.

    Raises ``StockadeError`` for a trusted root or a policy key trust cannot use.
    """
    from engine.records import replace
    from engine.registry import RegistryClient
    from stockade.admission.admit import Admitter
    from stockade.admission.imagetrust import MemoryFrontedCache
    from stockade.admission.service import AdmissionService
    from stockade.admission.verifier import ImageVerifier
    from trust.trustroot import TrustedRoot

    # Loaded once: a per-request load would read and hash the file on every verification.
    root = TrustedRoot.load(trusted_root) if trusted_root is not None else TrustedRoot.load()
    registries = replace(config.registries, timeout=min(config.registries.timeout, deadline))
    client = RegistryClient(replace(config, registries=registries), paths)
    cache = MemoryFrontedCache(paths.cache / "verify") if use_cache else None
    verifier = ImageVerifier(client, policy.requirements, trusted_root=root, tuf_cache=paths.cache / "tuf",
                             cache=cache, workers=workers)
    return AdmissionService(Admitter(policy, verifier, deadline=deadline), trusted_root=trusted_root,
                            log_decisions=log_decisions)
