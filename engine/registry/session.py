"""One registry host: scheme choice, authentication, retries, redirects, bounded reads, errors.

Everything between "send this request to the registry" and "here is a response worth reading":

* the scheme is chosen once by pinging ``/v2/``: HTTPS, or plain HTTP only when ``tls.py`` allows
  it and the server does not speak TLS at all;
* ``401`` is answered through :class:`~engine.registry.auth.Authenticator` and the request is sent
  again once;
* ``429``, ``5xx`` and broken connections are retried with exponential backoff (request bodies are
  factories, so an upload can be replayed);
* redirects (blob storage) are followed at most ``MAX_REDIRECTS`` times, a loop is an error, HTTPS is
  never downgraded (nor by an upload location or a next-page link), and the ``Authorization``
  header never leaves the host it is for (the registry, or the token realm).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import ssl
import time
from typing import BinaryIO, Callable, Mapping
from urllib.parse import urljoin, urlsplit

from engine.registry.auth import Authenticator, CredentialsFor, repository_of
from engine.errors import printable
from engine.registry.errors import AuthError, ManifestUnknownError, RegistryError, TLSError, VerificationError
from engine.registry.tls import HostSecurity, load_system_cas
from engine.registry.transport import CONNECTION_ERRORS, Response, Transport

MAX_REDIRECTS = 5
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_ERROR_BODY = 64 * 1024
BACKOFF_BASE = 0.25  # seconds; doubled per attempt, with jitter
USER_AGENT = "stockade"

BodyFactory = Callable[[], BinaryIO]
Body = bytes | BodyFactory | None


def read_bounded(resp: Response, limit: int, what: str) -> bytes:
    """Read a whole response body that must not exceed ``limit`` bytes (a hostile registry can send
    gigabytes where a manifest belongs); refuse it before reading if the length says so. A body
    cut short of its Content-Length, or a connection that breaks, is an error, not a short body."""
    length = resp.header("Content-Length")
    declared = int(length) if length is not None and length.strip().isascii() \
        and length.strip().isdigit() else None
    if declared is not None and declared > limit:
        resp.close()
        raise VerificationError(f"{what} is {declared} bytes, larger than the {limit}-byte limit "
                                "(unpack.max_manifest_size)")
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            chunk = resp.read(min(1024 * 1024, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise VerificationError(f"{what} is larger than the {limit}-byte limit "
                                        "(unpack.max_manifest_size)")
    except (*CONNECTION_ERRORS, http.client.HTTPException) as exc:
        raise RegistryError(f"{what}: the connection broke while reading it "
                            f"({_reason(exc)})") from None
    finally:
        resp.close()
    if declared is not None and total != declared:
        raise RegistryError(f"{what}: the connection closed after {total} of the {declared} bytes "
                            "announced")
    return b"".join(chunks)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


_URL_CHARS = re.compile(r"[!-~]+")  # visible ASCII: what http.client can put on a request line


def url_problem(url: str) -> str | None:
    """Why ``url`` (from a registry: a redirect, a realm, a link) cannot be requested, or None."""
    if not _URL_CHARS.fullmatch(url):
        return "has spaces, control or non-ASCII characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        return f"is malformed ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an HTTP(S) URL"
    return None


def drain(resp: Response) -> None:
    """Read a small unwanted body to its end so the keep-alive connection can be reused."""
    try:
        resp.read(MAX_ERROR_BODY)
    except (OSError, *CONNECTION_ERRORS):
        pass
    resp.close()


def _error_detail(resp: Response) -> str:
    """``CODE: message`` from a distribution error body, else a short excerpt of the body."""
    try:
        body = resp.read(MAX_ERROR_BODY)
    except (OSError, *CONNECTION_ERRORS):
        body = b""
    finally:
        resp.close()
    try:
        errors = json.loads(body).get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors
                 if isinstance(e, dict)]
        if parts:
            return printable("; ".join(parts)[:300])
    except (ValueError, AttributeError, TypeError):  # not JSON, not an object, errors not a list
        pass
    text = body.decode("utf-8", errors="replace").strip().splitlines()
    return printable(text[0][:200]) if text else ""


# Where a registry's API is served when that is not the host its images are named by: Docker Hub's
# images are ``docker.io/...``, its API is ``registry-1.docker.io`` (as Docker and containers/image
# connect; ``docker.io`` itself only redirects, and credentials are never sent across a redirect).
API_HOSTS = {"docker.io": "registry-1.docker.io"}


class Session:
    """Requests to one registry (``host[:port]``), authenticated and retried."""

    def __init__(self, registry: str, *, transport: Transport, security: Callable[[str], HostSecurity],
                 credentials: CredentialsFor, timeout: float, retries: int) -> None:
        self.registry = registry
        self.host = API_HOSTS.get(registry, registry)  # the host requests and credentials go to
        self.transport = transport
        self._security = security  # host[:port] -> how to reach it (this registry and redirect targets)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._cas_deferred: set[str] = set()  # hosts whose context lacks the system CAs so far
        self.timeout = timeout
        self.retries = retries
        self.base: str | None = None
        self.auth = Authenticator(registry, credentials, self._fetch_token,
                                  realm_allowed=lambda host: security(host).allow_http)

    # --- plumbing -----------------------------------------------------------------------------

    def _tls(self, url: str) -> ssl.SSLContext | None:
        parts = urlsplit(url)
        if parts.scheme != "https":
            return None
        host = parts.netloc
        if host not in self._contexts:
            security = self._security(host)
            self._contexts[host] = security.context()
            if security.defers_system_cas:
                self._cas_deferred.add(host)
        return self._contexts[host]

    def _raw(self, method: str, url: str, headers: Mapping[str, str], body: BinaryIO | bytes | None,
             ) -> Response:
        full = {"User-Agent": USER_AGENT, **headers}
        if body is None and method in ("PUT", "POST", "PATCH"):
            full.setdefault("Content-Length", "0")
        elif isinstance(body, bytes):
            full["Content-Length"] = str(len(body))
        host = urlsplit(url).netloc
        while True:
            try:
                return self.transport.request(method, url, headers=full, body=body,
                                              timeout=self.timeout, tls=self._tls(url))
            except ssl.SSLCertVerificationError as exc:
                if host in self._cas_deferred and (body is None or isinstance(body, bytes)):
                    # The host does speak TLS: trust the system CAs too, and try again once.
                    self._cas_deferred.discard(host)
                    load_system_cas(self._contexts[host])
                    continue
                raise TLSError(f"{host}: certificate not trusted ({exc.verify_message}); put its CA "
                               f"in certs.d/{host}/ca.crt, or use --tls-verify=false") from None

    def _fetch_token(self, method: str, url: str, headers: dict[str, str],
                     body: bytes | None) -> tuple[int, bytes]:
        self._check_target(url, url, "token realm")
        # The realm's credentials go to the realm's host only, not where it may redirect.
        headers = dict(headers)
        auth = headers.pop("Authorization", None)
        resp = self._follow(method, url, headers, lambda: body, auth, auth_host=urlsplit(url).netloc,
                            secret_body=body is not None)
        return resp.status, read_bounded(resp, 1024 * 1024, f"token response from {url}")

    def ping(self) -> None:
        """Choose the scheme (``/v2/`` over HTTPS, else HTTP where allowed) and learn the challenge."""
        if self.base is not None:
            return
        security = self._security(self.registry)
        last: ssl.SSLError | None = None
        schemes = ("https", "http") if security.allow_http else ("https",)
        for scheme in schemes:
            url = f"{scheme}://{self.host}/v2/"
            try:
                resp = self._with_retries(lambda u=url: self._raw("GET", u, {}, None),  # type: ignore[misc]
                                          f"{self.registry}")
            except ssl.SSLError as exc:
                last = exc
                continue  # the server does not speak TLS: plain HTTP, if allowed
            self.base = f"{scheme}://{self.host}"
            if resp.status == 401:
                self.auth.prime(resp.header("WWW-Authenticate"))
            elif resp.status == 404:
                resp.close()
                raise RegistryError(f"{self.registry} is not an OCI registry (GET /v2/ answered 404)")
            drain(resp)
            return
        reason = getattr(last, "reason", None) or last
        raise TLSError(f"{self.registry}: TLS handshake failed ({reason}); if it serves plain HTTP, "
                       "list it in registries.insecure or use --tls-verify=false") from None

    def _with_retries(self, send: Callable[[], Response], what: str) -> Response:
        """Call ``send`` until it returns a response that is not a transient failure."""
        attempt = 0
        while True:
            try:
                resp = send()
            except socket.gaierror as exc:  # a name that does not resolve: retrying will not help
                raise RegistryError(f"cannot reach {what}: cannot resolve its host name "
                                    f"({exc.strerror or exc})") from None
            except CONNECTION_ERRORS as exc:
                if attempt >= self.retries or isinstance(exc, ConnectionRefusedError):
                    raise RegistryError(f"cannot reach {what}: {_reason(exc)} (after {attempt + 1} "
                                        f"attempt{'s' if attempt else ''})") from None
            except http.client.HTTPException as exc:  # not HTTP/1.x, 100+ headers, a 64 KiB line
                raise RegistryError(f"{what}: malformed HTTP response ({_reason(exc)})") from None
            else:
                if resp.status not in RETRY_STATUSES or attempt >= self.retries:
                    return resp
                drain(resp)
            jitter = 0.5 + random.random()  # nosec B311 # backoff jitter, not security
            time.sleep(BACKOFF_BASE * (2 ** attempt) * jitter)
            attempt += 1

    def _check_target(self, source: str, target: str, why: str) -> None:
        """Refuse a URL the registry handed us (a redirect, an upload location, a next page) that
        is not HTTP(S), or that trades the HTTPS of ``source`` for plain HTTP to a host that may
        not be reached over it: the request would carry the Authorization header in clear text."""
        problem = url_problem(target)
        if problem:
            raise RegistryError(f"{self.registry}: {why} {target!r} {problem}")
        parts = urlsplit(target)
        if urlsplit(source).scheme == "https" and parts.scheme == "http" \
                and not self._security(parts.netloc).allow_http:
            raise RegistryError(f"{self.registry}: refusing a {why} from HTTPS to plain HTTP ({target})")

    def _follow(self, method: str, url: str, headers: Mapping[str, str], body: Callable[[], Body],
                auth: str | None, *, auth_host: str | None = None, secret_body: bool = False,
                ) -> Response:
        """Send, following redirects. ``auth`` (an Authorization value) goes only to ``auth_host``
        (default: the registry's own host), never to a host a redirect leads to, as Docker and
        containers/image drop it; a ``secret_body`` (a refresh token) is never sent elsewhere."""
        auth_host = auth_host or self.host
        seen: set[str] = set()
        for _ in range(MAX_REDIRECTS + 1):
            seen.add(url)
            sent = dict(headers)
            if auth and urlsplit(url).netloc == auth_host:
                sent["Authorization"] = auth
            payload = body()
            stream = payload() if callable(payload) else payload
            try:
                resp = self._raw(method, url, sent, stream)
            finally:
                if stream is not None and not isinstance(stream, bytes):
                    stream.close()
            if resp.status not in REDIRECT_STATUSES:
                return resp
            location = resp.header("Location")
            drain(resp)
            if not location:
                raise RegistryError(f"{self.registry}: redirect {resp.status} without a Location")
            try:
                target = urljoin(url, location)
            except ValueError:
                target = location  # unjoinable (e.g. a broken IPv6 literal): reported as malformed
            self._check_target(url, target, "redirect")
            if target in seen:
                raise RegistryError(f"{self.registry}: redirect loop at {target}")
            if secret_body and urlsplit(target).netloc != auth_host:
                raise AuthError(f"{self.registry}: the token service at {auth_host} redirected to "
                                f"{urlsplit(target).netloc}; refusing to send the refresh token there")
            if resp.status == 303:
                method, body = "GET", (lambda: None)
            url = target
        raise RegistryError(f"{self.registry}: more than {MAX_REDIRECTS} redirects from {method} {url}")

    # --- the API the client uses --------------------------------------------------------------

    def url(self, path: str) -> str:
        self.ping()
        return f"{self.base}{path}"

    def request(self, method: str, path_or_url: str, *, scope: tuple[str, ...],
                headers: Mapping[str, str] | None = None, body: Body = None) -> Response:
        """Send an authenticated request (path relative to the registry, or an absolute URL the
        registry gave us, e.g. an upload location) and return the final response, any status."""
        if "://" in path_or_url:  # an upload location or a next page the registry sent
            self._check_target(self.url("/"), path_or_url, "registry-given URL")
            url = path_or_url
        else:
            url = self.url(path_or_url)
        what = f"{method} {urlsplit(url).path}"
        auth = self.auth.header(scope)
        for answered in (False, True):
            resp = self._with_retries(
                lambda a=auth: self._follow(method, url, headers or {}, lambda: body, a),  # type: ignore[misc]
                f"{self.registry}: {what}")
            # Only the registry's own challenges are answered: a 401 from the blob storage a
            # redirect led to would name a realm of its choosing, and get the registry's credentials.
            ours = urlsplit(resp.url).netloc == self.host
            if resp.status != 401 or answered or not ours:
                break
            challenge = resp.header("WWW-Authenticate")
            drain(resp)
            auth = self.auth.answer(challenge, scope)
        if resp.status == 401 and ours:
            resp.close()
            if self.auth.credentials(repository_of(scope)) is None:
                raise AuthError(f"{self.registry} requires authentication for {what} "
                                f"(run: stockade login {self.registry})")
            raise AuthError(f"{self.registry}: authentication failed for {what} (check the "
                            f"credentials: stockade login {self.registry})")
        return resp

    def fail(self, resp: Response, what: str) -> RegistryError:
        """The error for an unexpected response (the caller raises it)."""
        detail = _error_detail(resp)
        suffix = f": {detail}" if detail else ""
        if resp.status == 404:
            return ManifestUnknownError(f"{what}: not found{suffix}")
        if resp.status == 403:
            return AuthError(f"{what}: access denied{suffix}")
        return RegistryError(f"{what}: HTTP {resp.status}{suffix}")
