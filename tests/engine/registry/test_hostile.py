"""A registry that lies: every lie is caught with a clear error, and nothing half-trusted comes back.

The impostor in ``hostile.py`` serves what each test tells it to. A small transport subclass maps
made-up host names (``registry.example``) to loopback, so the rules for hosts that are *not* loopback
(no plain HTTP, no credentials over HTTP) are tested too.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess  # nosec B404 # openssl for a client certificate
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Callable

import pytest

from engine.reference import Reference
from engine.registry import mediatypes as mt
from engine.registry.client import RegistryClient
from engine.registry.credentials import Credentials
from engine.registry.errors import (AuthError, RegistryError, TLSError, UnsupportedMediaTypeError,
                                    VerificationError)
from engine.registry.manifest import Descriptor
from engine.registry.proxy import Proxy
from engine.registry.transport import HTTPTransport, SEND_BLOCK
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.hostile import Hostile, digest_of, reply, start_hostile
from tests.engine.registry.oci import make_image
from tests.support.registry import make_ca_and_server_cert

Make = Callable[..., RegistryClient]
BLOB = b"layer bytes " * 1000


class Remap(HTTPTransport):
    """Connect every host name to 127.0.0.1 (same port): lets a test use non-loopback names."""

    def _connect(self, scheme: str, netloc: str, timeout: float, tls: ssl.SSLContext | None,
                 proxy: Proxy | None) -> http.client.HTTPConnection:
        return super()._connect(scheme, "127.0.0.1:" + netloc.rsplit(":", 1)[1], timeout, tls, proxy)


def ref_on(server: Hostile, name: str = "evil/app:latest", host: str | None = None) -> Reference:
    return Reference.parse(f"{host or server.host}/{name}")


def test_manifest_that_does_not_match_the_digest_asked_for(make_client: Make, hostile: Hostile) -> None:
    honest = make_image()
    wanted = digest_of(honest.manifest)
    tampered = honest.manifest.replace(b'"size"', b' "size"', 1)
    hostile.manifest("evil/app", wanted, tampered, mt.OCI_MANIFEST, claimed=wanted)
    with pytest.raises(VerificationError, match=rf"content does not match the digest asked for "
                                                rf"\(expected {wanted}, got sha256:"):
        make_client().get_manifest(ref_on(hostile).with_digest(wanted))


def test_tag_whose_claimed_digest_is_wrong(make_client: Make, hostile: Hostile) -> None:
    honest = make_image()
    hostile.manifest("evil/app", "latest", honest.manifest, mt.OCI_MANIFEST, claimed="sha256:" + "e" * 64)
    with pytest.raises(VerificationError, match="content does not match the digest the registry claims"):
        make_client().get_manifest(ref_on(hostile))


def test_blob_whose_content_does_not_match(make_client: Make, hostile: Hostile) -> None:
    desc = Descriptor(mt.OCI_LAYER_GZIP, digest_of(BLOB), len(BLOB))
    hostile.blob("evil/app", desc.digest, BLOB[:-1] + b"X")
    with pytest.raises(VerificationError, match=rf"blob {desc.digest} from .*: content does not match"):
        with make_client().open_blob(ref_on(hostile), desc) as reader:
            reader.read()


@pytest.mark.parametrize("served,length,message", [
    (BLOB + b"extra", None, r"announces 12005 bytes, its descriptor declares 12000 \(size lie\)"),
    (BLOB[:-10], None, r"announces 11990 bytes, its descriptor declares 12000"),
    (BLOB[:-10], 11990, r"announces 11990"),
])
def test_size_lies(make_client: Make, hostile: Hostile, served: bytes, length: int | None, message: str) -> None:
    desc = Descriptor(mt.OCI_LAYER_GZIP, digest_of(BLOB), len(BLOB))
    hostile.blob("evil/app", desc.digest, served, length=length)
    with pytest.raises(VerificationError, match=message):
        make_client().fetch_blob(ref_on(hostile), desc)


def test_size_lie_without_content_length_is_cut_at_the_first_extra_byte(make_client: Make,
                                                                       hostile: Hostile) -> None:
    desc = Descriptor(mt.OCI_LAYER_GZIP, digest_of(BLOB), len(BLOB))

    def endless(h: BaseHTTPRequestHandler) -> None:  # chunked, no Content-Length, never ends
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"x" * 65536
        for _ in range(100_000):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    hostile.on("GET", f"/v2/evil/app/blobs/{desc.digest}", endless)
    with pytest.raises(VerificationError, match=r"more data than the 12000 bytes its descriptor declares"):
        make_client().fetch_blob(ref_on(hostile), desc)


def test_manifest_of_several_hundred_megabytes(make_client: Make, hostile: Hostile) -> None:
    sent = {"bytes": 0}

    def huge(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", mt.OCI_MANIFEST)
        h.send_header("Transfer-Encoding", "chunked")  # no length to refuse up front: must stop reading
        h.end_headers()
        chunk = b" " * (1024 * 1024)
        for _ in range(600):  # 600 MiB if the client kept reading
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent["bytes"] += len(chunk)

    hostile.on("GET", "/v2/evil/app/manifests/latest", huge)
    hostile.on("GET", "/v2/evil/app/manifests/declared",
               lambda h: reply(h, 200, b"{}", {"Content-Type": mt.OCI_MANIFEST}, length=600 * 1024 * 1024))
    client = make_client()
    start = time.monotonic()
    with pytest.raises(VerificationError, match=r"manifest .*evil/app:latest is larger than the 4194304-byte "
                                                r"limit \(unpack.max_manifest_size\)"):
        client.get_manifest(ref_on(hostile))
    assert time.monotonic() - start < 60
    assert sent["bytes"] < 100 * 1024 * 1024  # stopped early (socket buffers hold a little more)
    with pytest.raises(VerificationError, match=r"is 629145600 bytes, larger than the 4194304-byte limit"):
        client.get_manifest(ref_on(hostile, "evil/app:declared"))


def test_unknown_media_type(make_client: Make, hostile: Hostile) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.evil.manifest+json"}).encode()
    hostile.manifest("evil/app", "latest", body, "application/vnd.evil.manifest+json")
    with pytest.raises(UnsupportedMediaTypeError, match="unsupported manifest media type "
                                                        "'application/vnd.evil.manifest\\+json'"):
        make_client().get_manifest(ref_on(hostile))


def test_redirect_loop_and_redirect_chain(make_client: Make, hostile: Hostile) -> None:
    desc = Descriptor(mt.OCI_LAYER_GZIP, digest_of(BLOB), len(BLOB))
    hostile.on("GET", f"/v2/evil/app/blobs/{desc.digest}", lambda h: reply(h, 307, headers={"Location": "/a"}))
    hostile.on("GET", "/a", lambda h: reply(h, 302, headers={"Location": "/b"}))
    hostile.on("GET", "/b", lambda h: reply(h, 302, headers={"Location": f"{hostile.url}/a"}))
    with pytest.raises(RegistryError, match=r"redirect loop at http://127\.0\.0\.1:\d+/a"):
        make_client().fetch_blob(ref_on(hostile), desc)
    for i in range(10):
        hostile.on("GET", f"/hop{i}", lambda h, n=i: reply(h, 302, headers={"Location": f"/hop{n + 1}"}))
    hostile.on("GET", f"/v2/evil/app/blobs/{desc.digest}", lambda h: reply(h, 302, headers={"Location": "/hop0"}))
    with pytest.raises(RegistryError, match="more than 5 redirects"):
        make_client().fetch_blob(ref_on(hostile), desc)


def test_redirect_to_blob_storage_drops_the_authorization_header(make_client: Make, hostile: Hostile) -> None:
    storage = start_hostile()
    try:
        desc = Descriptor(mt.OCI_LAYER_GZIP, digest_of(BLOB), len(BLOB))
        storage.on("GET", "/bucket/blob", lambda h: reply(h, 200, BLOB))

        def guarded(h: BaseHTTPRequestHandler) -> None:
            if h.headers.get("Authorization") is None:
                reply(h, 401, headers={"WWW-Authenticate": 'Basic realm="evil"'})
            else:
                reply(h, 307, headers={"Location": f"{storage.url}/bucket/blob"})

        hostile.on("GET", "/v2/", guarded)
        hostile.on("GET", f"/v2/evil/app/blobs/{desc.digest}", guarded)
        client = make_client(credentials=Credentials("user", "secret"))
        assert client.fetch_blob(ref_on(hostile), desc) == BLOB
        assert [s.headers.get("Authorization") for s in hostile.seen if "/blobs/" in s.path][-1]
        assert [s for s in storage.seen if s.path == "/bucket/blob"]
        assert all("Authorization" not in s.headers for s in storage.seen)
    finally:
        storage.stop()


def test_retries_5xx_then_gives_up(make_client: Make, hostile: Hostile) -> None:
    desc = Descriptor(mt.OCI_LAYER_GZIP, digest_of(BLOB), len(BLOB))
    calls = {"n": 0}

    def flaky(h: BaseHTTPRequestHandler) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            reply(h, 503, b"busy")
        else:
            reply(h, 200, BLOB)

    hostile.on("GET", f"/v2/evil/app/blobs/{desc.digest}", flaky)
    assert make_client(make_config(retries=2)).fetch_blob(ref_on(hostile), desc) == BLOB
    assert calls["n"] == 3
    hostile.on("GET", f"/v2/evil/app/blobs/{desc.digest}", lambda h: reply(h, 502, b"down"))
    with pytest.raises(RegistryError, match="HTTP 502"):
        make_client(make_config(retries=1)).fetch_blob(ref_on(hostile), desc)


def test_dropped_connection_resumes_with_range(make_client: Make, hostile: Hostile) -> None:
    big = bytes(range(256)) * (3 * SEND_BLOCK // 256)
    desc = Descriptor(mt.OCI_LAYER_GZIP, digest_of(big), len(big))
    hostile.blob("evil/app", desc.digest, big)
    plain = hostile.routes[("GET", f"/v2/evil/app/blobs/{desc.digest}")]

    def drop_once(h: BaseHTTPRequestHandler) -> None:
        if any("Range" in s.headers for s in hostile.seen):
            plain(h)
            return
        h.send_response(200)
        h.send_header("Content-Length", str(len(big)))
        h.end_headers()
        h.wfile.write(big[:SEND_BLOCK + 12345])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(2)

    hostile.on("GET", f"/v2/evil/app/blobs/{desc.digest}", drop_once)
    with make_client(make_config(retries=2)).open_blob(ref_on(hostile), desc) as reader:
        assert reader.read() == big
    ranges = [s.headers["Range"] for s in hostile.seen if "Range" in s.headers]
    assert ranges and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"


def test_timeout(make_client: Make, hostile: Hostile) -> None:
    hostile.on("GET", "/v2/evil/app/manifests/latest", lambda h: time.sleep(3))
    with pytest.raises(RegistryError, match="timed out"):
        make_client(make_config(retries=0, timeout=0.5)).get_manifest(ref_on(hostile))


def test_plain_http_only_for_loopback_or_insecure(make_client: Make, hostile: Hostile) -> None:
    name = f"registry.example:{hostile.host.rsplit(':', 1)[1]}"
    ref = ref_on(hostile, host=name)
    hostile.manifest("evil/app", "latest", make_image().manifest, mt.OCI_MANIFEST)
    with pytest.raises(TLSError, match=rf"{name}: TLS handshake failed .*list it in registries.insecure"):
        make_client(transport=Remap()).get_manifest(ref)
    assert make_client(make_config(insecure=(name,)), transport=Remap()).get_manifest(ref).media_type
    assert make_client(make_config(insecure=("registry.example",)), transport=Remap()).get_manifest(ref)
    assert make_client(tls_verify=False, transport=Remap()).get_manifest(ref)


def test_no_credentials_to_a_plain_http_token_realm(make_client: Make, hostile: Hostile) -> None:
    name = f"registry.example:{hostile.host.rsplit(':', 1)[1]}"
    hostile.on("GET", "/v2/", lambda h: reply(h, 401, headers={
        "WWW-Authenticate": f'Bearer realm="http://auth.example:{hostile.host.rsplit(":", 1)[1]}/token"'}))
    client = make_client(make_config(insecure=(name,)), transport=Remap(),
                         credentials=Credentials("user", "secret"))
    with pytest.raises(AuthError, match="refusing to fetch a token over plain HTTP"):
        client.get_manifest(ref_on(hostile, host=name))
    assert not any(s.path.startswith("/token") for s in hostile.seen)


def test_https_redirect_never_downgrades(make_client: Make, tmp_path: Path) -> None:
    ca, crt, key = make_ca_and_server_cert(tmp_path / "pki")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    server = start_hostile(context)
    try:
        desc = Descriptor(mt.OCI_LAYER_GZIP, digest_of(BLOB), len(BLOB))
        port = server.host.rsplit(":", 1)[1]
        server.on("GET", f"/v2/evil/app/blobs/{desc.digest}",
                  lambda h: reply(h, 302, headers={"Location": f"http://storage.example:{port}/b"}))
        trusted = tmp_path / "trusted"
        trusted.mkdir()
        (trusted / "ca.crt").write_bytes(ca.read_bytes())
        client = make_client(cert_dir=trusted, transport=Remap())
        with pytest.raises(RegistryError, match="refusing a redirect from HTTPS to plain HTTP"):
            client.fetch_blob(ref_on(server), desc)
    finally:
        server.stop()


def test_client_certificate_from_certs_d(make_client: Make, tmp_path: Path) -> None:
    ca, crt, key = make_ca_and_server_cert(tmp_path / "pki")
    certs = tmp_path / "certs.d"
    client_key, client_csr = tmp_path / "client.key", tmp_path / "client.csr"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731  # nosec
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=stockade-client",
        "-keyout", str(client_key), "-out", str(client_csr))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(ca))
    server = start_hostile(context)
    try:
        hostile_dir = certs / server.host
        hostile_dir.mkdir(parents=True)
        run("openssl", "x509", "-req", "-in", str(client_csr), "-CA", str(ca), "-CAkey",
            str(ca.parent / "ca.key"), "-CAcreateserial", "-days", "1", "-out", str(hostile_dir / "client.cert"))
        (hostile_dir / "ca.crt").write_bytes(ca.read_bytes())
        server.manifest("evil/app", "latest", make_image().manifest, mt.OCI_MANIFEST)
        without = make_client(make_config(certs_dirs=(str(certs),)))
        with pytest.raises(Exception, match=r"missing key client.key for client certificate client.cert"):
            without.get_manifest(ref_on(server))
        (hostile_dir / "client.key").write_bytes(client_key.read_bytes())
        assert make_client(make_config(certs_dirs=(str(certs),))).get_manifest(ref_on(server)).media_type \
            == mt.OCI_MANIFEST
    finally:
        server.stop()
