"""The OCI distribution client: manifests, blobs, tags, referrers, uploads.

Every byte a registry sends is checked before anyone acts on it: manifests against the digest asked
for (or the ``Docker-Content-Digest`` the registry claims), blobs against digest *and* size while they
stream, documents read into memory against ``unpack.max_manifest_size``. A registry that lies gets a
:class:`~engine.registry.errors.VerificationError`, never a half-trusted object.

Build one client per command from the configuration and paths; it serves every registry (one
:class:`~engine.registry.session.Session` per host) and is safe to share between download threads.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence
from urllib.parse import urlencode, urljoin

from engine.config import Config, Paths
from engine.reference import Reference, ReferenceError, validate_digest
from engine.registry import mediatypes as mt
from engine.registry.credentials import Credentials, CredentialStore, default_auth_file
from engine.registry.digest import DigestVerifier, compute
from engine.registry.errors import RegistryError, VerificationError
from engine.registry.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from engine.registry.platform import Platform, select_manifest
from engine.registry.proxy import ProxyConfig
from engine.registry.session import Session, drain, read_bounded
from engine.registry.streams import CHUNK, ObservedReader, SliceReader
from engine.registry.tls import SYSTEM_CERTS_DIRS, HostSecurity, host_security
from engine.registry.transport import CONNECTION_ERRORS, HTTPTransport, Response, Transport

MAX_TAG_PAGES = 1000
# A tag list or referrers listing may span pages, but not grow without bound: a hostile registry
# chaining 1000 pages of 4 MiB made the trust check parse and hold gigabytes.
LISTING_DOCUMENTS = 4
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ManifestResult:
    """A manifest exactly as the registry stored it, with its verified digest and media type."""

    raw: bytes
    media_type: str
    digest: str
    parsed: ImageManifest | ImageIndex

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(media_type=self.media_type, digest=self.digest, size=len(self.raw))


@dataclass(frozen=True)
class ResolvedImage:
    """What a reference names: the top-level manifest (maybe an index) and the image manifest chosen
    for the platform (the same object when the reference names a single-platform image)."""

    top: ManifestResult
    image: ManifestResult

    @property
    def manifest(self) -> ImageManifest:
        if not isinstance(self.image.parsed, ImageManifest):  # resolve() guarantees it
            raise VerificationError(f"{self.image.digest} is not an image manifest")
        return self.image.parsed


def _repo_path(ref: Reference) -> str:
    return f"/v2/{ref.repository}"


def _scope(ref: Reference, actions: str = "pull") -> tuple[str, ...]:
    return (f"repository:{ref.repository}:{actions}",)


class BlobReader(io.RawIOBase):
    """A verified, resumable blob stream: read it to EOF, and EOF raises if digest or size are wrong.

    A connection that drops mid-blob is reopened with ``Range: bytes=N-``; a registry that ignores
    the range and starts again from byte 0 has the bytes already delivered skipped, so the digest is
    always computed over exactly the bytes the consumer received.
    """

    def __init__(self, client: "RegistryClient", ref: Reference, desc: Descriptor,
                 progress: Progress | None = None) -> None:
        super().__init__()
        self._client, self._ref, self._desc = client, ref, desc
        self._progress = progress
        self._what = f"blob {desc.digest} from {ref.name}"
        self._verifier = DigestVerifier(desc.digest, desc.size, what=self._what)
        self._resp: Response | None = None
        self._resumes = 0
        self._done = False
        self._open(0)

    def _open(self, offset: int) -> None:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self._client._blob_request(self._ref, self._desc.digest, headers=headers)
        skip = 0
        if offset and resp.status == 200:
            skip = offset  # the server ignored Range: discard what we already have
        elif resp.status not in (200, 206) or (resp.status == 206 and not offset):
            raise self._client.session(self._ref.registry).fail(resp, self._what)
        length = resp.header("Content-Length")
        expected = self._desc.size - (offset if resp.status == 206 else 0)
        if length is not None and length.strip().isascii() and length.strip().isdigit() and int(length) != expected:
            resp.close()
            raise VerificationError(f"{self._what}: the registry announces {int(length)} bytes, its "
                                    f"descriptor declares {expected} (size lie)")
        while skip:
            got = resp.read(min(skip, CHUNK))
            if not got:
                resp.close()
                raise RegistryError(f"{self._what}: the connection closed while resuming")
            skip -= len(got)
        self._resp = resp

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._done or self._resp is None:
            return 0
        while True:
            try:
                n = self._resp.readinto(buffer)
            except CONNECTION_ERRORS:
                n = -1
            # http.client reports a connection closed before Content-Length as a plain EOF: an
            # end before the declared size is a drop, like an exception, and is resumed.
            if n > 0 or (n == 0 and self._verifier.count >= self._desc.size):
                break
            self._resp.close()
            if self._resumes >= self._client.retries:
                raise RegistryError(f"{self._what}: the connection kept dropping after "
                                    f"{self._verifier.count} of {self._desc.size} bytes")
            self._resumes += 1
            self._open(self._verifier.count)
        if n == 0:
            self._done = True
            self._resp.close()
            self._verifier.finish()
            return 0
        view = memoryview(buffer)[:n]
        self._verifier.update(view)
        if self._progress:
            self._progress(n)
        return n

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
        super().close()


class RegistryClient:
    """Talks to any number of registries for one command.

    ``tls_verify``/``cert_dir``/``credentials``/``auth_file`` are the command line's ``--tls-verify``,
    ``--cert-dir``, ``--creds`` and ``--authfile``. ``transport`` replaces the network (tests).
    """

    def __init__(self, config: Config, paths: Paths, *, tls_verify: bool | None = None,
                 cert_dir: Path | None = None, credentials: Credentials | None = None,
                 auth_file: Path | None = None, transport: Transport | None = None) -> None:
        reg = config.registries
        self.timeout = reg.timeout
        self.retries = reg.retries
        self.max_document = config.unpack.max_manifest_size
        self.insecure = reg.insecure
        self.certs_roots = tuple(Path(d) for d in reg.certs_dirs) + (paths.config_dir / "certs.d",) \
            + SYSTEM_CERTS_DIRS
        self.tls_verify = tls_verify
        self.cert_dir = cert_dir
        self.credential_store = CredentialStore(auth_file or default_auth_file(paths.config_dir))
        self._override = credentials
        self.transport = transport or HTTPTransport(ProxyConfig.from_environment())
        self._sessions: dict[str, Session] = {}
        self._security: dict[str, HostSecurity] = {}
        self._credentials: dict[tuple[str, str | None], Credentials | None] = {}
        self._lock = threading.Lock()

    # --- hosts ----------------------------------------------------------------------------------

    def security(self, host: str) -> HostSecurity:
        with self._lock:
            if host not in self._security:
                self._security[host] = host_security(host, certs_roots=self.certs_roots,
                                                     insecure=self.insecure, tls_verify=self.tls_verify,
                                                     cert_dir=self.cert_dir)
            return self._security[host]

    def session(self, registry: str) -> Session:
        with self._lock:
            session = self._sessions.get(registry)
            if session is None:
                session = Session(registry, transport=self.transport, security=self.security,
                                  credentials=lambda repo: self.credentials(registry, repo),
                                  timeout=self.timeout, retries=self.retries)
                self._sessions[registry] = session
        return session

    def credentials(self, registry: str, repository: str | None = None) -> Credentials | None:
        """The credentials for ``repository`` on ``registry`` (``--creds``, else the files), looked
        up once per command: a credential helper is a process, not something to run per request."""
        if self._override is not None:
            return self._override
        key = (registry, repository)
        with self._lock:
            if key in self._credentials:
                return self._credentials[key]
        found = self.credential_store.get(registry, repository)
        with self._lock:
            self._credentials[key] = found
        return found

    def check_login(self, registry: str) -> None:
        """Prove the credentials work (``stockade login``): an authenticated ``GET /v2/``."""
        session = self.session(registry)
        resp = session.request("GET", "/v2/", scope=())
        if resp.status != 200:
            raise session.fail(resp, f"login to {registry}")
        drain(resp)

    def close(self) -> None:
        self.transport.close()

    # --- manifests --------------------------------------------------------------------------------

    def get_manifest(self, ref: Reference, *, accept: str = mt.MANIFEST_ACCEPT) -> ManifestResult:
        """Fetch the manifest ``ref`` names (its digest if it has one, else its tag), verified."""
        session = self.session(ref.registry)
        what = f"manifest {ref}"
        resp = session.request("GET", f"{_repo_path(ref)}/manifests/{ref.identifier}",
                               scope=_scope(ref), headers={"Accept": accept})
        if resp.status != 200:
            raise session.fail(resp, what)
        declared_type = resp.header("Content-Type")
        claimed = resp.header("Docker-Content-Digest")
        raw = read_bounded(resp, self.max_document, what)
        expected = ref.digest or (_claimed_digest(claimed, what) if claimed else None)
        digest = compute(raw, (expected or "sha256").partition(":")[0])
        if expected and digest != expected:
            source = "the digest asked for" if ref.digest else "the digest the registry claims"
            raise VerificationError(f"{what}: content does not match {source} "
                                    f"(expected {expected}, got {digest})")
        parsed = parse_manifest(raw, declared_type, where=what)
        return ManifestResult(raw=raw, media_type=parsed.media_type, digest=digest, parsed=parsed)

    def resolve(self, ref: Reference, platform: Platform | None = None) -> ResolvedImage:
        """The image ``ref`` names for ``platform`` (default: this host's), following an index."""
        top = self.get_manifest(ref)
        if isinstance(top.parsed, ImageManifest):
            return ResolvedImage(top=top, image=top)
        entry = select_manifest(top.parsed.manifests, platform or Platform.host(), where=f"index {ref}")
        image = self.get_manifest(ref.with_digest(entry.digest))
        if not isinstance(image.parsed, ImageManifest):
            raise VerificationError(f"index {ref}: entry {entry.digest} is itself an index")
        if image.media_type != entry.media_type:
            raise VerificationError(f"index {ref}: entry {entry.digest} declares {entry.media_type} "
                                    f"but the manifest is {image.media_type}")
        return ResolvedImage(top=top, image=image)

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        """The descriptor the registry announces for ``ref`` (None if it has no such manifest).

        Unverified by nature (a HEAD has no body): use it to decide *whether* to fetch, then fetch by
        the digest, which :meth:`get_manifest` verifies.
        """
        session = self.session(ref.registry)
        resp = session.request("HEAD", f"{_repo_path(ref)}/manifests/{ref.identifier}",
                               scope=_scope(ref), headers={"Accept": mt.MANIFEST_ACCEPT})
        if resp.status == 404:
            drain(resp)
            return None
        if resp.status != 200:
            raise session.fail(resp, f"manifest {ref}")
        digest, media_type = resp.header("Docker-Content-Digest"), resp.header("Content-Type")
        length = resp.header("Content-Length") or ""
        drain(resp)
        if not digest or not media_type or not (length.isascii() and length.isdigit()):
            return None
        return Descriptor(media_type=media_type.split(";")[0].strip(),
                          digest=_claimed_digest(digest, f"manifest {ref}"), size=int(length))

    def put_manifest(self, ref: Reference, raw: bytes, media_type: str) -> str:
        """Store ``raw`` under ``ref``'s tag (or digest); return its digest, as the registry confirms."""
        session = self.session(ref.registry)
        digest = compute(raw)
        if ref.digest and ref.digest != digest:
            raise VerificationError(f"manifest for {ref}: content has digest {digest}")
        resp = session.request("PUT", f"{_repo_path(ref)}/manifests/{ref.identifier}",
                               scope=_scope(ref, "pull,push"), headers={"Content-Type": media_type},
                               body=raw)
        if resp.status not in (200, 201, 202):
            raise session.fail(resp, f"push manifest {ref}")
        claimed = resp.header("Docker-Content-Digest")
        drain(resp)
        if claimed and claimed.strip() != digest:
            raise VerificationError(f"push manifest {ref}: the registry stored {claimed.strip()}, "
                                    f"we sent {digest}")
        return digest

    # --- blobs ----------------------------------------------------------------------------------

    def _blob_request(self, ref: Reference, digest: str, *, method: str = "GET",
                      headers: dict[str, str] | None = None) -> Response:
        return self.session(ref.registry).request(
            method, f"{_repo_path(ref)}/blobs/{validate_digest(digest)}", scope=_scope(ref),
            headers=headers)

    def open_blob(self, ref: Reference, desc: Descriptor, progress: Progress | None = None) -> BlobReader:
        """A stream of the blob that raises at EOF unless digest and size match ``desc``."""
        return BlobReader(self, ref, desc, progress)

    def fetch_blob(self, ref: Reference, desc: Descriptor) -> bytes:
        """A small blob (config, signature payload) read into memory: bounded and verified."""
        if desc.size > self.max_document:
            raise VerificationError(f"blob {desc.digest} in {ref.name} declares {desc.size} bytes, "
                                    f"more than the {self.max_document}-byte limit for documents "
                                    "(unpack.max_manifest_size)")
        with self.open_blob(ref, desc) as reader:
            return reader.read()

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        resp = self._blob_request(ref, digest, method="HEAD")
        drain(resp)
        if resp.status in (200, 404):
            return resp.status == 200
        raise self.session(ref.registry).fail(resp, f"blob {digest} in {ref.name}")

    def mount_blob(self, ref: Reference, digest: str, source: Reference) -> tuple[bool, str | None]:
        """Cross-repository mount of ``digest`` from ``source`` (same registry) into ``ref``'s
        repository: (True, None) when mounted; else (False, the upload location the registry opened
        instead, if any), which the caller can use for an ordinary upload."""
        session = self.session(ref.registry)
        query = urlencode({"mount": validate_digest(digest), "from": source.repository})
        resp = session.request("POST", f"{_repo_path(ref)}/blobs/uploads/?{query}",
                               scope=_scope(ref, "pull,push") + _scope(source))
        location = resp.header("Location")
        drain(resp)
        if resp.status == 201:
            return True, None
        if resp.status == 202 and location:
            return False, urljoin(session.url("/"), location)
        return False, None

    def _start_upload(self, ref: Reference) -> str:
        session = self.session(ref.registry)
        resp = session.request("POST", f"{_repo_path(ref)}/blobs/uploads/", scope=_scope(ref, "pull,push"))
        location = resp.header("Location")
        if resp.status != 202 or not location:
            raise session.fail(resp, f"start upload to {ref.name}")
        drain(resp)
        return urljoin(session.url("/"), location)

    def push_blob(self, ref: Reference, desc: Descriptor, opener: Callable[[], BinaryIO], *,
                  mount_from: Sequence[Reference] = (), chunk_size: int | None = None,
                  progress: Progress | None = None) -> str:
        """Make ``desc`` exist in ``ref``'s repository: "exists", "mounted" or "uploaded".

        ``opener`` returns a fresh stream of the blob each time (an upload may be retried).
        Uploads are monolithic (one PUT) unless ``chunk_size`` is set and the blob is larger, in
        which case it goes in PATCH chunks.
        """
        if self.blob_exists(ref, desc.digest):
            return "exists"
        location: str | None = None
        for source in mount_from:
            if source.registry != ref.registry or source.repository == ref.repository:
                continue
            mounted, location = self.mount_blob(ref, desc.digest, source)
            if mounted:
                return "mounted"
            if location:
                break
        location = location or self._start_upload(ref)
        if chunk_size and desc.size > chunk_size:
            location = self._upload_chunks(ref, location, desc, opener, chunk_size, progress)
            body: bytes | Callable[[], BinaryIO] | None = None
        else:
            body = _observed(opener, progress)
        session = self.session(ref.registry)
        sep = "&" if "?" in location else "?"
        headers = {"Content-Type": "application/octet-stream"}
        if body is not None:
            headers["Content-Length"] = str(desc.size)
        resp = session.request("PUT", f"{location}{sep}digest={desc.digest}",
                               scope=_scope(ref, "pull,push"), headers=headers, body=body)
        if resp.status not in (201, 204):
            raise session.fail(resp, f"upload blob {desc.digest} to {ref.name}")
        claimed = resp.header("Docker-Content-Digest")
        drain(resp)
        if claimed and claimed.strip() != desc.digest:
            raise VerificationError(f"upload blob to {ref.name}: the registry stored {claimed.strip()}, "
                                    f"we sent {desc.digest}")
        return "uploaded"

    def _upload_chunks(self, ref: Reference, location: str, desc: Descriptor,
                       opener: Callable[[], BinaryIO], chunk_size: int, progress: Progress | None) -> str:
        session = self.session(ref.registry)
        for start in range(0, desc.size, chunk_size):
            length = min(chunk_size, desc.size - start)
            resp = session.request(
                "PATCH", location, scope=_scope(ref, "pull,push"),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(length),
                         "Content-Range": f"{start}-{start + length - 1}"},
                body=_observed(lambda s=start, n=length: SliceReader(opener(), s, n),  # type: ignore[misc]
                               progress))
            new_location = resp.header("Location")
            if resp.status != 202 or not new_location:
                raise session.fail(resp, f"upload chunk {start}-{start + length - 1} of {desc.digest}")
            drain(resp)
            location = urljoin(location, new_location)
        return location

    # --- listings ---------------------------------------------------------------------------------

    def _pages(self, ref: Reference, path: str, what: str, accept: str,
               absent: tuple[int, ...] = ()) -> Iterator[bytes | None]:
        """Bodies of GET ``path`` and of the pages its ``Link: <…>; rel="next"`` headers chain to;
        a status in ``absent`` yields None once (the API or repository is not there)."""
        session = self.session(ref.registry)
        url: str | None = path
        budget = LISTING_DOCUMENTS * self.max_document  # bytes over all pages: each is parsed and kept
        for _ in range(MAX_TAG_PAGES):
            if url is None:
                return
            resp = session.request("GET", url, scope=_scope(ref), headers={"Accept": accept})
            if resp.status in absent:
                drain(resp)
                yield None
                return
            if resp.status != 200:
                raise session.fail(resp, what)
            link = resp.header("Link")
            body = read_bounded(resp, self.max_document, what)
            budget -= len(body)
            if budget < 0:
                raise VerificationError(f"{what}: its pages add up to more than {LISTING_DOCUMENTS} "
                                        f"times the {self.max_document}-byte limit "
                                        "(unpack.max_manifest_size)")
            yield body
            url = _next_link(link, session.url("/"))
        raise RegistryError(f"{what}: more than {MAX_TAG_PAGES} pages")

    def list_tags(self, ref: Reference) -> list[str]:
        what = f"tags of {ref.name}"
        tags: list[str] = []
        for body in self._pages(ref, f"{_repo_path(ref)}/tags/list?n=1000", what, "application/json"):
            try:
                page = json.loads(body or b"").get("tags") or []
            except (ValueError, AttributeError):
                raise VerificationError(f"{what}: malformed tag list") from None
            if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                raise VerificationError(f"{what}: malformed tag list")
            tags += page
        return tags

    def referrers(self, ref: Reference, digest: str, artifact_type: str | None = None) -> ImageIndex | None:
        """The OCI 1.1 referrers of ``digest`` (an index, possibly empty), or None when the registry
        does not implement the referrers API (callers then use the ``sha256-<hex>`` tag schema)."""
        what = f"referrers of {digest} in {ref.name}"
        query = "?" + urlencode({"artifactType": artifact_type}) if artifact_type else ""
        manifests: list[Descriptor] = []
        for body in self._pages(ref, f"{_repo_path(ref)}/referrers/{validate_digest(digest)}{query}",
                                what, mt.OCI_INDEX, absent=(400, 404, 405)):
            if body is None:
                return None
            page = parse_manifest(body, mt.OCI_INDEX, where=what)
            if not isinstance(page, ImageIndex):
                raise VerificationError(f"{what}: the registry did not answer with an index")
            manifests += page.manifests
        if artifact_type:
            manifests = [m for m in manifests if m.artifact_type == artifact_type]
        return ImageIndex(media_type=mt.OCI_INDEX, manifests=tuple(manifests))


def _claimed_digest(header: str, what: str) -> str:
    """The digest a ``Docker-Content-Digest`` header claims, which must be well-formed: a malformed
    one (upper-case hex, an unknown algorithm) is the registry's error, reported as such."""
    try:
        return validate_digest(header.strip(), what="Docker-Content-Digest", context=" from the registry")
    except ReferenceError as exc:
        raise VerificationError(f"{what}: {exc}") from None


def _observed(opener: Callable[[], BinaryIO], progress: Progress | None) -> Callable[[], BinaryIO]:
    """``opener`` whose streams report each chunk's size to ``progress`` (upload progress bars)."""
    if progress is None:
        return opener
    return lambda: ObservedReader(opener(), lambda chunk: progress(len(chunk)))  # type: ignore[return-value]


def _next_link(link: str | None, base: str) -> str | None:
    """The target of ``Link: </v2/…?last=x>; rel="next"`` (RFC 5988), resolved against ``base``."""
    if not link:
        return None
    for part in link.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            return urljoin(base, target.strip().strip("<>"))
    return None
