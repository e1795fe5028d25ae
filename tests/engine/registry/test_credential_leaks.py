"""Credentials stay with the host they are for, and never travel in clear text to a remote host.

A hostile registry (or token service) can point the client anywhere: a token realm that redirects,
a next-page ``Link`` or an upload ``Location`` in plain HTTP. Each test lets it try, then checks
what the other end received. Non-loopback names (``registry.example``) go to loopback through the
``Remap`` transport, so the rules for remote hosts are exercised.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import ssl
import subprocess  # nosec B404 # unshare, ip: argument lists
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from engine.reference import Reference
from engine.registry import mediatypes as mt
from engine.registry.client import RegistryClient
from engine.registry.credentials import Credentials
from engine.registry.errors import AuthError, RegistryError
from engine.registry.manifest import Descriptor
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.hostile import Hostile, digest_of, reply, start_hostile
from tests.engine.registry.oci import make_image
from tests.engine.registry.test_hostile import Remap, ref_on
from tests.support.cli import REPO
from tests.support.registry import make_ca_and_server_cert

Make = Callable[..., RegistryClient]
SECRET = Credentials("user", "secret")


class Recording(Remap):
    """``Remap`` that remembers every request it sends: (method, URL, headers)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str, **kw: Any) -> Any:  # type: ignore[override]
        self.sent.append((method, url, dict(kw["headers"])))
        return super().request(method, url, **kw)


@pytest.fixture
def thief() -> Iterator[Hostile]:
    """A second server: where a hostile registry or token service would like secrets to go."""
    server = start_hostile()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Hostile, Path]]:
    """A hostile registry over HTTPS and a directory holding its CA (for ``cert_dir``)."""
    ca, crt, key = make_ca_and_server_cert(tmp_path / "pki")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    server = start_hostile(context)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "ca.crt").write_bytes(ca.read_bytes())
    try:
        yield server, trusted
    finally:
        server.stop()


def basic_guard(answer: Callable[[BaseHTTPRequestHandler], None]) -> Callable[[BaseHTTPRequestHandler], None]:
    """A route that asks for basic credentials, then answers with ``answer``."""
    def route(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") is None:
            reply(h, 401, headers={"WWW-Authenticate": 'Basic realm="evil"'})
        else:
            answer(h)
    return route


def test_token_realm_redirect_does_not_carry_the_basic_credentials(make_client: Make, hostile: Hostile,
                                                                   thief: Hostile) -> None:
    parts = make_image()
    hostile.on("GET", "/v2/", lambda h: reply(h, 401, headers={
        "WWW-Authenticate": f'Bearer realm="{hostile.url}/token",service="evil"'}))
    hostile.on("GET", "/token", lambda h: reply(h, 302, headers={"Location": f"{thief.url}/issue"}))
    thief.on("GET", "/issue", lambda h: reply(h, 200, json.dumps({"token": "t0k3n"}).encode()))
    hostile.manifest("evil/app", "latest", parts.manifest, mt.OCI_MANIFEST)
    result = make_client(credentials=SECRET).get_manifest(ref_on(hostile))
    assert result.digest == parts.digest  # the redirected token service still answered
    assert [s.headers.get("Authorization") for s in hostile.seen if s.path.startswith("/token")][0] \
        .startswith("Basic ")  # the realm itself gets them
    assert [s for s in thief.seen if s.path.startswith("/issue")]
    assert all("Authorization" not in s.headers for s in thief.seen)


def test_refresh_token_is_not_posted_to_where_the_realm_redirects(make_client: Make, hostile: Hostile,
                                                                 thief: Hostile) -> None:
    hostile.on("GET", "/v2/", lambda h: reply(h, 401, headers={
        "WWW-Authenticate": f'Bearer realm="{hostile.url}/token",service="evil"'}))
    hostile.on("POST", "/token", lambda h: reply(h, 307, headers={"Location": f"{thief.url}/issue"}))
    thief.on("POST", "/issue", lambda h: reply(h, 200, json.dumps({"token": "t0k3n"}).encode()))
    refresh = Credentials("<token>", "", "refresh-me")
    with pytest.raises(AuthError, match=r"redirected to 127\.0\.0\.1:\d+; refusing to send the refresh token"):
        make_client(credentials=refresh).get_manifest(ref_on(hostile))
    assert [s for s in hostile.seen if s.path == "/token"]
    assert not thief.seen


def test_a_challenge_from_blob_storage_is_not_answered(make_client: Make, hostile: Hostile,
                                                      thief: Hostile) -> None:
    """The registry redirects to storage that answers 401 with a realm of its own: that realm must
    not get the registry's credentials (nor become the registry's token service)."""
    blob = b"layer" * 100
    desc = Descriptor(mt.OCI_LAYER, digest_of(blob), len(blob))
    hostile.on("GET", "/v2/", basic_guard(lambda h: reply(h, 200, b"{}")))
    hostile.on("GET", f"/v2/evil/app/blobs/{desc.digest}", basic_guard(
        lambda h: reply(h, 307, headers={"Location": f"{thief.url}/bucket"})))
    thief.on("GET", "/bucket", lambda h: reply(h, 401, headers={
        "WWW-Authenticate": f'Bearer realm="{thief.url}/token",service="storage"'}))
    thief.on("GET", "/token", lambda h: reply(h, 200, b'{"token": "t"}'))
    client = make_client(credentials=SECRET)
    with pytest.raises(RegistryError, match=rf"blob {desc.digest} from .*evil/app: HTTP 401"):
        client.fetch_blob(ref_on(hostile), desc)
    assert not [s for s in thief.seen if s.path.startswith("/token")]
    assert all("Authorization" not in s.headers for s in thief.seen)
    hostile.manifest("evil/app", "latest", make_image().manifest, mt.OCI_MANIFEST)
    client.get_manifest(ref_on(hostile))  # the registry's own basic challenge still rules
    assert not [s for s in thief.seen if s.path.startswith("/token")]


def test_next_page_link_in_plain_http_is_refused(make_client: Make,
                                                 tls_server: tuple[Hostile, Path]) -> None:
    server, trusted = tls_server
    name = f"registry.example:{server.host.rsplit(':', 1)[1]}"
    server.on("GET", "/v2/", basic_guard(lambda h: reply(h, 200, b"{}")))
    server.on("GET", "/v2/evil/app/tags/list", basic_guard(lambda h: reply(
        h, 200, b'{"tags": ["a"]}', {"Content-Type": "application/json",
                                     "Link": f'<http://{name}/v2/evil/app/tags/list?last=a>; rel="next"'})))
    transport = Recording()
    client = make_client(cert_dir=trusted, transport=transport, credentials=SECRET)
    with pytest.raises(RegistryError, match=rf"refusing a registry-given URL from HTTPS to plain HTTP "
                                            rf"\(http://{name}/v2/evil/app/tags/list\?last=a\)"):
        client.list_tags(Reference.parse(f"{name}/evil/app"))
    assert [u for _, u, h in transport.sent if "Authorization" in h]  # it did authenticate, over HTTPS
    assert not [u for _, u, _ in transport.sent if u.startswith("http://")]


def test_upload_location_in_plain_http_is_refused(make_client: Make,
                                                  tls_server: tuple[Hostile, Path]) -> None:
    server, trusted = tls_server
    name = f"registry.example:{server.host.rsplit(':', 1)[1]}"
    blob = b"layer" * 100
    desc = Descriptor(mt.OCI_LAYER, digest_of(blob), len(blob))
    server.on("GET", "/v2/", basic_guard(lambda h: reply(h, 200, b"{}")))
    server.on("POST", "/v2/evil/app/blobs/uploads/", basic_guard(lambda h: reply(
        h, 202, headers={"Location": f"http://{name}/upload/1"})))
    transport = Recording()
    client = make_client(cert_dir=trusted, transport=transport, credentials=SECRET)
    with pytest.raises(RegistryError, match="refusing a registry-given URL from HTTPS to plain HTTP"):
        client.push_blob(Reference.parse(f"{name}/evil/app"), desc, lambda: io.BytesIO(blob))
    assert not [u for _, u, _ in transport.sent if u.startswith("http://")]


def test_registry_given_url_of_another_scheme_is_one_error(make_client: Make, hostile: Hostile) -> None:
    hostile.on("POST", "/v2/evil/app/blobs/uploads/", lambda h: reply(
        h, 202, headers={"Location": "file:///etc/passwd"}))
    blob = b"x"
    with pytest.raises(RegistryError, match=r"registry-given URL 'file:///etc/passwd\?digest=sha256:\w+' "
                                            r"is not an HTTP\(S\) URL"):
        make_client().push_blob(ref_on(hostile), Descriptor(mt.OCI_LAYER, digest_of(blob), 1),
                                lambda: io.BytesIO(blob))


def _global_ipv4() -> str | None:
    """An address of this machine that is not loopback (for a server the client must not treat as
    local), or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],  # nosec B603 B607
                         capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            return fields[fields.index("inet") + 1].partition("/")[0]
    return None


_CLIENT = """
import sys
from pathlib import Path
from engine.config import Paths
from engine.reference import Reference
from engine.registry.client import RegistryClient
from engine.registry.credentials import Credentials
from engine.errors import StockadeError
from tests.engine.registry.fixtures import make_config

client = RegistryClient(make_config(retries=0), Paths.default(root=Path(sys.argv[2])),
                        credentials=Credentials("user", "secret"))
try:
    client.get_manifest(Reference.parse(sys.argv[1]))
    print("fetched")
except StockadeError as exc:
    print(exc)
"""


def test_a_localhost_name_that_dns_sends_elsewhere_gets_nothing(tmp_path: Path) -> None:
    """``evil.localhost`` counts as loopback (plain HTTP, credentials in clear), but /etc/hosts
    does not list it here, so DNS decides where it goes. A private /etc/hosts (a mount namespace)
    plays the spoofed answer: the name must still never reach that non-loopback address."""
    address = _global_ipv4()
    if address is None or shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs a non-loopback address, unshare and root for a private /etc/hosts")
    server = start_hostile(address=address)
    try:
        server.on("GET", "/v2/", basic_guard(lambda h: reply(h, 200, b"{}")))
        server.manifest("evil/app", "latest", make_image().manifest, mt.OCI_MANIFEST)
        hosts = tmp_path / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n{address} evil.localhost\n")
        ref = f"evil.localhost:{server.host.rsplit(':', 1)[1]}/evil/app:latest"
        proc = subprocess.run(  # nosec B603 B607
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$0" /etc/hosts && exec "$1" -c "$2" "$3" "$4"',
             str(hosts), sys.executable, _CLIENT, ref, str(tmp_path / "root")],
            capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert proc.returncode == 0, proc.stderr
        assert "evil.localhost resolves to no loopback address, which a localhost name must" in proc.stdout
        assert not server.seen
    finally:
        server.stop()


def test_docker_hub_is_reached_at_its_api_host(make_client: Make) -> None:
    """Images are named ``docker.io/...``; the API (and the credentials) are at
    ``registry-1.docker.io``, as Docker connects: ``docker.io`` only redirects, and credentials are
    never carried across a redirect, so an authenticated Hub pull would fail there."""

    class Unreachable(Recording):
        def _connect(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionRefusedError("no network in tests")

    transport = Unreachable()
    client = make_client(make_config(retries=0), transport=transport, credentials=SECRET)
    with pytest.raises(RegistryError):
        client.get_manifest(Reference.parse("busybox"))
    assert {u for _, u, _ in transport.sent} == {"https://registry-1.docker.io/v2/"}
