"""Image verification for a server: a bounded worker pool, one flight per image, and deadlines.

The API server waits at most ``timeoutSeconds`` (10 s by default) for an answer, and a registry can
be slow or gone. Verification therefore runs on a pool of worker threads and the request waits
only until its own deadline: an image still unverified then is answered as a verification error, so
the policy denies it (fail closed) with the reason, well inside the API server's timeout. The work
itself carries on, and a positive verdict it reaches lands in the cache for the retry.

Concurrent reviews of the same image (a Deployment's ReplicaSet creating ten Pods at once) share
one verification instead of asking the registry ten times. Dry-run reviews read the cache but never
write it.

A digest reference whose verdicts are all cached is answered on the request's own thread: handing
it to the pool would cost a thread switch (about a third of a cached review) for a file-free lookup.
The lookup runs ``verify_image`` against a registry client that refuses every call, so a miss (or a
tag, which must be resolved at the registry) stops at its first network access and goes to the pool.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import TYPE_CHECKING, Sequence

from stockade.admission.imagetrust import ReadOnlyCache
from stockade.verification import ImageFacts, trust_requirements, verify_facts

if TYPE_CHECKING:
    from pathlib import Path

    from engine.registry import RegistryClient
    from policies import SignatureRequirement
    from trust.cache import VerificationCache
    from trust.trustroot import TrustedRoot

log = logging.getLogger("stockade.admission")

_Key = tuple[str, tuple[int, ...], bool]


class _CacheMiss(Exception):
    """Raised by ``_CacheOnly``: the verdict is not cached; the pool must ask the registry."""


class _CacheOnly:
    """A stand-in registry client for cache lookups: any registry access means a miss."""

    def __getattr__(self, name: str) -> object:
        raise _CacheMiss(name)


_CACHE_ONLY = _CacheOnly()


class ImageVerifier:
    """Verifies images against a fixed policy's signature requirements, concurrently."""

    def __init__(self, client: RegistryClient, requirements: Sequence[SignatureRequirement], *,
                 trusted_root: TrustedRoot | None, tuf_cache: Path, cache: VerificationCache | None,
                 workers: int = 8) -> None:
        self.client = client
        self.cache = cache
        self._read_only = ReadOnlyCache(cache) if cache is not None else None
        # Converted once: a key trust cannot use stops the server at start-up, not each request.
        self._requirements = {req: trust_requirements(req, trusted_root=trusted_root, tuf_cache=tuf_cache)
                              for req in requirements}
        self._index = {req: n for n, req in enumerate(requirements)}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                           thread_name_prefix="stockade-verify")
        self._flights: dict[_Key, concurrent.futures.Future[ImageFacts]] = {}
        self._lock = threading.Lock()

    def submit(self, reference: str, requirements: Sequence[SignatureRequirement], *,
               dry_run: bool) -> concurrent.futures.Future[ImageFacts]:
        """Start (or join) the verification of ``reference`` against ``requirements``."""
        reqs = [self._requirements[r] for r in requirements]
        cache = self._read_only if dry_run else self.cache
        if cache is not None and "@" in reference:
            try:
                facts = verify_facts(_CACHE_ONLY, reference, reqs, cache=cache)  # type: ignore[arg-type]
            except _CacheMiss:
                pass
            else:
                done: concurrent.futures.Future[ImageFacts] = concurrent.futures.Future()
                done.set_result(facts)
                return done
        key = (reference, tuple(sorted(self._index[r] for r in requirements)), dry_run)
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight
            flight = self._pool.submit(verify_facts, self.client, reference, reqs, cache=cache)
            self._flights[key] = flight
        flight.add_done_callback(lambda _f, k=key: self._land(k))
        return flight

    def _land(self, key: _Key) -> None:
        with self._lock:
            self._flights.pop(key, None)

    def collect(self, flights: dict[str, concurrent.futures.Future[ImageFacts]],
                timeout: float) -> dict[str, ImageFacts]:
        """The facts of every flight, waiting at most ``timeout`` seconds in all. A flight not done
        by then, or one that failed unexpectedly, yields facts with ``error`` set (fail closed)."""
        concurrent.futures.wait(list(flights.values()), timeout=max(timeout, 0.0))
        out = {}
        for reference, flight in flights.items():
            if not flight.done():
                out[reference] = ImageFacts(reference, error=(
                    f"verification did not finish within the review's deadline ({max(timeout, 0.0):.1f} s were "
                    "left): the registry is slow or unreachable; denied until it can be verified"))
                continue
            try:
                out[reference] = flight.result()
            except Exception as exc:  # noqa: BLE001 - a bug in verification must still deny
                log.exception("verification of %s failed unexpectedly", reference)
                out[reference] = ImageFacts(reference, error=f"internal error while verifying: "
                                                             f"{type(exc).__name__}: {exc}")
        return out

    def close(self) -> None:
        """Stop taking work and close the registry connections; running verifications are abandoned."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
