"""Proxies: HTTPS through a CONNECT tunnel, plain HTTP as absolute-form requests, NO_PROXY as Go reads it.

``TinyProxy`` is a proxy written here, on loopback. It resolves made-up names from its own table
(``registry.proxied.test:PORT`` -> the test registry on 127.0.0.1), so a request that reaches the
registry under such a name can only have gone through it; loopback names are never proxied, which
is why the tests use made-up ones.
"""

from __future__ import annotations

import base64
import socket
import threading
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from engine.config import Paths
from engine.reference import Reference
from engine.registry.client import RegistryClient
from engine.registry.errors import RegistryError, TLSError
from engine.registry.proxy import ProxyConfig, ProxyError, parse_proxy
from engine.store import Store
from tests.engine.registry.fixtures import make_config
from tests.support.images import skopeo_push
from tests.support.registry import Registry

Make = Callable[..., RegistryClient]
NAME = "registry.proxied.test"


class TinyProxy:
    """CONNECT tunnels and absolute-form HTTP requests to the hosts in ``routes`` (name:port -> a
    loopback port); ``authorization``: the Proxy-Authorization value it demands, if any."""

    def __init__(self, routes: dict[str, int], authorization: str | None = None) -> None:
        self.routes, self.authorization = routes, authorization
        self.seen: list[tuple[str, str, str | None]] = []  # method, target, Proxy-Authorization
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            more = client.recv(4096)
            if not more:
                client.close()
                return
            data += more
        head, _, rest = data.partition(b"\r\n\r\n")
        request, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        self.seen.append((method, target, headers.get("proxy-authorization")))
        if self.authorization and headers.get("proxy-authorization") != self.authorization:
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                           b"Proxy-Authenticate: Basic realm=\"tiny\"\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        port = self.routes.get(target if method == "CONNECT" else urlsplit(target).netloc)
        if port is None:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", port))
        if method == "CONNECT":
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
        else:  # forwarded as it came: Go's servers accept absolute-form request targets
            upstream.sendall(data)
        pipes = [threading.Thread(target=_pipe, args=pair, daemon=True)
                 for pair in ((client, upstream), (upstream, client))]
        for pipe in pipes:
            pipe.start()
        for pipe in pipes:
            pipe.join()
        client.close()
        upstream.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@pytest.fixture
def proxy(tls_registry: Registry, registry: Registry) -> Iterator[TinyProxy]:
    server = TinyProxy({f"{NAME}:{tls_registry.port}": tls_registry.port,
                        f"{NAME}:{registry.port}": registry.port},
                       authorization="Basic " + base64.b64encode(b"corp user:p@ss").decode())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
                 "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def proxied_busybox(tls_registry: Registry, busybox_layout: Path) -> str:
    """The busybox image in the TLS registry; its digest as skopeo reported it."""
    return skopeo_push(busybox_layout, "busybox", f"{tls_registry.host}/proxied/busybox:latest")


def test_pull_through_a_connect_tunnel(proxy: TinyProxy, tls_registry: Registry, proxied_busybox: str,
                                       make_client: Make, paths: Paths,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("corp%20user:p%40ss@"))
    client = make_client(tls_verify=False)
    result = Store(paths, make_config()).pull(
        Reference.parse(f"{NAME}:{tls_registry.port}/proxied/busybox:latest"), client)
    assert result.digest == proxied_busybox
    tunnels = {(method, target) for method, target, _ in proxy.seen}
    assert tunnels == {("CONNECT", f"{NAME}:{tls_registry.port}")}
    assert {auth for *_, auth in proxy.seen} == {proxy.authorization}


def test_the_tunnel_keeps_tls_verification_end_to_end(proxy: TinyProxy, tls_registry: Registry,
                                                      make_client: Make, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's CA is trusted, but its certificate names 127.0.0.1, not the name asked for:
    the check happens against the registry itself, through the proxy, and fails."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("corp%20user:p%40ss@"))
    trusted = tmp_path / "certs"
    trusted.mkdir()
    (trusted / "ca.crt").write_bytes(tls_registry.ca_cert.read_bytes())  # type: ignore[union-attr]
    client = make_client(cert_dir=trusted)
    with pytest.raises(TLSError, match=rf"{NAME}:{tls_registry.port}: certificate not trusted "
                                       rf"\(Hostname mismatch, certificate is not valid for '{NAME}'"):
        client.list_tags(Reference.parse(f"{NAME}:{tls_registry.port}/proxied/busybox"))


def test_proxy_refusals_are_clear(proxy: TinyProxy, tls_registry: Registry, make_client: Make,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ref = Reference.parse(f"{NAME}:{tls_registry.port}/proxied/busybox")
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("corp%20user:wrong@"))
    with pytest.raises(ProxyError, match=rf"^proxy {proxy.url()} refused to connect to "
                                         rf"{NAME}:{tls_registry.port}: 407 Proxy Authentication "
                                         r"Required \(check the credentials in the proxy URL\)$"):
        make_client(tls_verify=False).list_tags(ref)
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{port}")  # no scheme: http:// is meant
    with pytest.raises(ProxyError, match=rf"^cannot reach proxy http://127.0.0.1:{port} for {NAME}"):
        make_client(tls_verify=False).list_tags(ref)


def test_plain_http_goes_through_http_proxy(proxy: TinyProxy, registry: Registry, make_client: Make,
                                            busybox_layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An insecure registry: HTTPS is tried first (through the tunnel), then plain HTTP through
    HTTP_PROXY as absolute-form requests."""
    skopeo_push(busybox_layout, "busybox", f"{registry.host}/proxied/plain:latest")
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("corp%20user:p%40ss@"))
    monkeypatch.setenv("http_proxy", proxy.url("corp%20user:p%40ss@"))
    name = f"{NAME}:{registry.port}"
    client = make_client(make_config(insecure=(NAME,)))
    assert client.list_tags(Reference.parse(f"{name}/proxied/plain")) == ["latest"]
    # The tiny proxy reads only a connection's first request (the rest flow through, kept alive).
    assert proxy.seen == [("CONNECT", name, proxy.authorization),
                          ("GET", f"http://{name}/v2/", proxy.authorization)]


def test_loopback_and_no_proxy_go_direct(proxy: TinyProxy, tls_registry: Registry, proxied_busybox: str,
                                         make_client: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("corp%20user:p%40ss@"))
    direct = make_client(tls_verify=False)
    assert direct.list_tags(Reference.parse(f"{tls_registry.host}/proxied/busybox")) == ["latest"]
    monkeypatch.setenv("NO_PROXY", f"example.com, .proxied.test:{tls_registry.port}")
    with pytest.raises(RegistryError, match=rf"cannot reach {NAME}:{tls_registry.port}: cannot "
                                            "resolve its host name"):
        make_client(tls_verify=False).list_tags(
            Reference.parse(f"{NAME}:{tls_registry.port}/proxied/busybox"))
    assert proxy.seen == []


@pytest.mark.parametrize("no_proxy,url,proxied", [
    ("", "https://quay.io/v2/", True),
    ("", "https://localhost:5000/v2/", False),  # loopback: never proxied
    ("", "https://127.0.0.2/v2/", False),
    ("", "https://[::1]:5000/v2/", False),
    ("*", "https://quay.io/v2/", False),
    ("quay.io", "https://quay.io/v2/", False),  # a domain: itself...
    ("quay.io", "https://cdn.quay.io/v2/", False),  # ...and its subdomains
    ("quay.io", "https://notquay.io/v2/", True),
    ("QUAY.IO", "https://Quay.Io/v2/", False),  # names compare case-insensitively
    (".quay.io", "https://quay.io/v2/", True),  # a leading dot: subdomains only
    (".quay.io", "https://cdn.quay.io/v2/", False),
    ("*.quay.io", "https://quay.io/v2/", True),
    ("*.quay.io", "https://cdn.quay.io/v2/", False),
    ("quay.io:8443", "https://quay.io/v2/", True),  # a port must match (443 is implied here)
    ("quay.io:8443", "https://quay.io:8443/v2/", False),
    ("quay.io:443", "https://quay.io/v2/", False),
    ("10.0.0.0/8", "https://10.1.2.3:5000/v2/", False),  # CIDR
    ("10.0.0.0/8", "https://11.1.2.3/v2/", True),
    ("fd00::/8", "https://[fd12::1]:5000/v2/", False),
    ("10.1.2.3", "https://10.1.2.3:5000/v2/", False),  # an address, any port
    ("10.1.2.3:5000", "https://10.1.2.3:5001/v2/", True),
    ("[fd12::1]:5000", "https://[fd12::1]:5000/v2/", False),
    (" example.com , 10.0.0.0/8 ", "https://10.9.9.9/v2/", False),  # spaces around entries
    ("not a cidr/99, :80", "https://quay.io/v2/", True),  # unreadable entries are ignored, as Go does
])
def test_no_proxy_forms(no_proxy: str, url: str, proxied: bool) -> None:
    config = ProxyConfig.from_environment({"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": no_proxy})
    assert (config.for_url(url) is not None) == proxied


def test_environment_rules() -> None:
    env = {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "http://lower:3128",
           "http_proxy": "http://plain:8080"}
    config = ProxyConfig.from_environment(env)
    assert str(config.for_url("https://quay.io/v2/")) == "http://upper:3128"  # upper case wins
    assert str(config.for_url("http://quay.io/v2/")) == "http://plain:8080"
    assert ProxyConfig.from_environment({"http_proxy": "http://plain:8080"}).for_url("https://quay.io/") is None
    cgi = ProxyConfig.from_environment({**env, "REQUEST_METHOD": "GET"})  # httpoxy
    assert cgi.for_url("http://quay.io/v2/") is None and cgi.for_url("https://quay.io/v2/") is not None
    assert parse_proxy("http://u%3A1:p%40ss@[fd00::1]:3128", "X").headers() == \
        {"Proxy-Authorization": "Basic " + base64.b64encode(b"u:1:p@ss").decode()}
    assert parse_proxy("proxy.corp", "X").netloc == "proxy.corp:80"
    with pytest.raises(ProxyError, match=r"^HTTPS_PROXY=socks5://u:\*\*\*@proxy:1080: only http:// proxies"):
        ProxyConfig.from_environment({"HTTPS_PROXY": "socks5://u:secret@proxy:1080"})
    with pytest.raises(ProxyError, match="the port is not a number"):
        parse_proxy("http://proxy:http", "HTTP_PROXY")
