"""The one place Stockade touches the network: a small HTTP transport interface and its real form.

python-tuf keeps network access behind ``FetcherInterface``; the registry client does the same with
:class:`Transport`, so authentication, redirects, retries and verification are plain logic that a test
can drive with a loopback server or a hostile one. :class:`HTTPTransport` is the standard-library
implementation: ``http.client`` with keep-alive connections pooled per host (thread-safe: each
request takes a connection out of the pool and returns it only after its body was read to the end),
through the proxy ``engine.registry.proxy`` chooses for each URL (a ``CONNECT`` tunnel for HTTPS, so
the registry's certificate is verified end to end; absolute-form requests for plain HTTP).
"""

from __future__ import annotations

import errno
import http.client
import ipaddress
import socket
import ssl
import threading
from typing import BinaryIO, Mapping, Protocol
from urllib.parse import urlsplit

from engine.registry.proxy import Proxy, ProxyConfig, ProxyError
from engine.registry.tls import is_localhost_name

Body = bytes | BinaryIO | None
SEND_BLOCK = 1024 * 1024  # bytes per send() when streaming an upload


class Response(Protocol):
    """What a transport returns: status, headers, a streaming body. Close it when done."""

    status: int
    url: str

    def header(self, name: str) -> str | None: ...
    def read(self, n: int = -1) -> bytes: ...
    def readinto(self, buffer: bytearray | memoryview) -> int: ...
    def close(self) -> None: ...


class Transport(Protocol):
    """Send one HTTP request (no redirects, no auth, no retries: the session does those)."""

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: Body,
                timeout: float, tls: ssl.SSLContext | None) -> Response: ...

    def close(self) -> None: ...


# Errors that mean "the connection broke", worth a retry on a new connection.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead,
    http.client.BadStatusLine, socket.timeout, TimeoutError,
)


def _connect_loopback(address: tuple[str, int], timeout: float | None,
                      source_address: tuple[str, int] | None = None) -> socket.socket:
    """Connect a ``localhost`` name to one of its loopback addresses, never another (RFC 6761
    6.3). Such a name counts as loopback, so plain HTTP and credentials may go to it in clear
    text: where ``/etc/hosts`` lacks it (``*.localhost`` names, on a glibc without
    nss-myhostname) DNS answers, and a spoofed answer must not receive them."""
    host, port = address
    targets = [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
               if ipaddress.ip_address(info[4][0].partition("%")[0]).is_loopback]
    if not targets:
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"{host} resolves to no loopback address, "
                                     "which a localhost name must")
    failure: OSError | None = None
    for target in targets:
        try:
            return socket.create_connection((target, port), timeout, source_address)
        except OSError as exc:
            failure = exc
    raise failure  # type: ignore[misc]


class _PooledResponse:
    """An ``http.client`` response that hands its connection back to the pool when fully read."""

    def __init__(self, resp: http.client.HTTPResponse, conn: http.client.HTTPConnection,
                 transport: "HTTPTransport", key: tuple[object, ...], url: str) -> None:
        self._resp, self._conn, self._transport, self._key = resp, conn, transport, key
        self.status = resp.status
        self.url = url

    def header(self, name: str) -> str | None:
        return self._resp.getheader(name)

    def read(self, n: int = -1) -> bytes:
        return self._resp.read() if n < 0 else self._resp.read(n)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        return self._resp.readinto(buffer)

    def close(self) -> None:
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is None:
            return
        reusable = self._resp.isclosed() and not self._resp.will_close
        self._resp.close()
        if reusable:
            self._transport._give_back(self._key, conn)
        else:
            conn.close()


class HTTPTransport:
    """``http.client`` connections, kept alive and reused per (scheme, host, TLS context, proxy).

    ``proxies``: the proxy rules (default: none; the registry client reads them from the
    environment with :meth:`ProxyConfig.from_environment`)."""

    def __init__(self, proxies: ProxyConfig | None = None) -> None:
        self._idle: dict[tuple[object, ...], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self.proxies = proxies or ProxyConfig()

    def _take(self, key: tuple[object, ...]) -> http.client.HTTPConnection | None:
        with self._lock:
            conns = self._idle.get(key)
            return conns.pop() if conns else None

    def _give_back(self, key: tuple[object, ...], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(conn)

    def _connect(self, scheme: str, netloc: str, timeout: float, tls: ssl.SSLContext | None,
                 proxy: Proxy | None) -> http.client.HTTPConnection:
        """A connection to ``netloc``, or to ``proxy`` (tunnelled to ``netloc`` for HTTPS)."""
        address = proxy.netloc if proxy else netloc
        if scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                address, timeout=timeout, context=tls or ssl.create_default_context(),
                blocksize=SEND_BLOCK)
        else:
            conn = http.client.HTTPConnection(address, timeout=timeout, blocksize=SEND_BLOCK)
        if proxy is None:
            if is_localhost_name(netloc):
                conn._create_connection = _connect_loopback  # type: ignore[attr-defined]
            return conn
        if scheme == "https":
            # CONNECT first; TLS to the registry is then negotiated inside the tunnel, with the
            # registry's own name checked against its certificate (http.client uses the tunnel host).
            conn.set_tunnel(netloc, headers=proxy.headers())
        try:
            conn.connect()
        except ssl.SSLError:
            conn.close()
            raise  # the registry's TLS, through the tunnel: the session reports it
        except (ConnectionRefusedError, socket.gaierror) as exc:
            conn.close()
            raise ProxyError(f"cannot reach proxy {proxy} for {netloc}: "
                             f"{exc.strerror or exc}") from None
        except OSError as exc:
            conn.close()
            if str(exc).startswith("Tunnel connection failed"):  # http.client's CONNECT refusal
                detail = str(exc).partition(":")[2].strip()
                raise ProxyError(f"proxy {proxy} refused to connect to {netloc}: {detail}"
                                 + (" (check the credentials in the proxy URL)" if detail[:3] == "407"
                                    else "")) from None
            raise
        return conn

    @staticmethod
    def _send(conn: http.client.HTTPConnection, method: str, target: str,
              headers: Mapping[str, str], body: Body) -> http.client.HTTPResponse:
        try:
            conn.request(method, target, body=body, headers=dict(headers))
            return conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: Body,
                timeout: float, tls: ssl.SSLContext | None) -> Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme in {url!r}")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        proxy = self.proxies.for_url(url)
        if proxy is not None and parts.scheme == "http":
            # A plain-HTTP request goes to the proxy whole: absolute URL, the proxy's credentials.
            target = f"http://{parts.netloc}{target}"
            headers = {**headers, **proxy.headers()}
        key = (parts.scheme, parts.netloc, id(tls) if tls is not None else None, proxy)
        conn = self._take(key)
        reused = conn is not None
        if conn is None:
            conn = self._connect(parts.scheme, parts.netloc, timeout, tls, proxy)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        try:
            resp = self._send(conn, method, target, headers, body)
        except CONNECTION_ERRORS + (BrokenPipeError,):
            # A kept-alive connection the server had already closed: one fresh attempt, if the
            # body can be sent again (a stream cannot; the session retries with a new one).
            if not reused or not (body is None or isinstance(body, bytes)):
                raise
            conn = self._connect(parts.scheme, parts.netloc, timeout, tls, proxy)
            resp = self._send(conn, method, target, headers, body)
        return _PooledResponse(resp, conn, self, key, url)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
