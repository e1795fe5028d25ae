"""Malformed HTTP from a hostile registry or token service: one clear error, never a crash.

``http.client`` raises its own exceptions (``InvalidURL``, ``LineTooLong``, ``UnknownProtocol``,
``IncompleteRead`` outside a request) and a float clock overflows on a huge ``expires_in``; each of
those used to escape as an internal error. Here each is sent for real by the impostor server.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Callable

import pytest

from engine.registry import mediatypes as mt
from engine.registry.client import RegistryClient
from engine.registry.errors import AuthError, RegistryError, VerificationError
from engine.registry.manifest import Descriptor
from engine.registry.platform import PlatformError
from tests.engine.registry.hostile import Hostile, digest_of, reply
from tests.engine.registry.oci import make_image
from tests.engine.registry.test_hostile import ref_on

Make = Callable[..., RegistryClient]


def _token_service(hostile: Hostile, doc: object, realm_path: str = "/token") -> None:
    hostile.on("GET", "/v2/", lambda h: reply(h, 401, headers={
        "WWW-Authenticate": f'Bearer realm="{hostile.url}{realm_path}",service="evil"'}))
    body = json.dumps(doc).encode()
    hostile.on("GET", "/token", lambda h: reply(h, 200, body))


def test_huge_token_lifetime_is_cut_not_a_crash(make_client: Make, hostile: Hostile) -> None:
    parts = make_image()
    _token_service(hostile, {"token": "t0k3n", "expires_in": 10 ** 400})
    hostile.manifest("evil/app", "latest", parts.manifest, mt.OCI_MANIFEST)
    assert make_client().get_manifest(ref_on(hostile)).digest == parts.digest
    assert [s.headers.get("Authorization") for s in hostile.seen if "/manifests/" in s.path] == ["Bearer t0k3n"]


@pytest.mark.parametrize("token", ["t\x00k", "t\u0100k", "t\u00e9k", ""])
def test_token_that_cannot_be_a_header_value(make_client: Make, hostile: Hostile, token: str) -> None:
    _token_service(hostile, {"token": token})
    with pytest.raises(AuthError, match=r"the token service at http://127\.0\.0\.1:\d+/token sent no usable token"):
        make_client().get_manifest(ref_on(hostile))
    assert not [s for s in hostile.seen if "/manifests/" in s.path]


def test_token_realm_with_a_space(make_client: Make, hostile: Hostile) -> None:
    _token_service(hostile, {"token": "t"}, realm_path="/to ken")
    with pytest.raises(RegistryError, match=r"token realm 'http://127\.0\.0\.1:\d+/to ken\?service=evil&scope="
                                            r".*' has spaces, control or non-ASCII characters"):
        make_client().get_manifest(ref_on(hostile))


@pytest.mark.parametrize("location,problem", [
    ("/a b", "has spaces, control or non-ASCII characters"),
    ("/a\x7fb", "has spaces, control or non-ASCII characters"),
    ("http://[::1", r"is malformed \(Invalid IPv6 URL\)"),
    ("http://127.0.0.1:99999/x", r"is malformed \(Port out of range"),
    ("http://127.0.0.1:abc/x", r"is malformed \(Port could not be cast"),
])
def test_malformed_redirect(make_client: Make, hostile: Hostile, location: str, problem: str) -> None:
    blob = b"x" * 10
    desc = Descriptor(mt.OCI_LAYER, digest_of(blob), len(blob))
    hostile.on("GET", f"/v2/evil/app/blobs/{desc.digest}", lambda h: reply(h, 307, headers={"Location": location}))
    with pytest.raises(RegistryError, match=rf"127\.0\.0\.1:\d+: redirect '.*' {problem}"):
        make_client().fetch_blob(ref_on(hostile), desc)


@pytest.mark.parametrize("raw,message", [
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"Content-Length: 0\r\n\r\n",
     r"GET /v2/evil/app/manifests/latest: malformed HTTP response \(got more than 100 headers\)"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\nContent-Length: 0\r\n\r\n",
     r"malformed HTTP response \(got more than 65536 bytes when reading header line\)"),
    (b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", r"malformed HTTP response \(HTTP/2\.0\)"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
     r"manifest .*evil/app:latest: the connection broke while reading it"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: " + mt.OCI_MANIFEST.encode() + b"\r\n\r\n{}",
     r"manifest .*evil/app:latest: the connection closed after 2 of the 10 bytes announced"),
])
def test_malformed_http(make_client: Make, hostile: Hostile, raw: bytes, message: str) -> None:
    def send(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(raw)
        h.wfile.flush()
        h.close_connection = True

    hostile.on("GET", "/v2/evil/app/manifests/latest", send)
    with pytest.raises(RegistryError, match=message):
        make_client().get_manifest(ref_on(hostile))


ESC = "\x1b]0;owned\x07\x1b[2J"


@pytest.mark.parametrize("body,shown", [
    (json.dumps({"errors": [{"code": "DENIED", "message": f"no{ESC}"}]}).encode(), r"DENIED: no\x1b]0;owned\x07"),
    (f"plain{ESC}".encode(), r"plain\x1b]0;owned\x07"),
    (json.dumps({"errors": 5}).encode(), '{"errors": 5}'),  # not a list: the body, not a TypeError
])
def test_registry_error_text_is_quoted_not_run(make_client: Make, hostile: Hostile, body: bytes,
                                               shown: str) -> None:
    hostile.on("GET", "/v2/evil/app/manifests/latest", lambda h: reply(h, 418, body))
    with pytest.raises(RegistryError) as info:
        make_client().get_manifest(ref_on(hostile))
    assert "\x1b" not in str(info.value) and "\x07" not in str(info.value)
    assert str(info.value).startswith(f"manifest {hostile.host}/evil/app:latest: HTTP 418: ")
    assert shown in str(info.value)


def test_media_type_disagreement_is_quoted_not_run(make_client: Make, hostile: Hostile) -> None:
    doc = json.loads(make_image().manifest)
    doc["mediaType"] = f"application/x{ESC}"
    raw = json.dumps(doc).encode()
    hostile.manifest("evil/app", "latest", raw, mt.OCI_MANIFEST)
    with pytest.raises(RegistryError, match=r"but the manifest says application/x\\x1b\]0;owned") as info:
        make_client().get_manifest(ref_on(hostile))
    assert "\x1b" not in str(info.value)


def test_platforms_an_index_offers_are_quoted_not_run(make_client: Make, hostile: Hostile) -> None:
    parts = make_image()
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": parts.digest, "size": len(parts.manifest),
         "platform": {"os": "plan9", "architecture": f"x{ESC}"}}]}).encode()
    hostile.manifest("evil/app", "latest", index, mt.OCI_INDEX)
    with pytest.raises(PlatformError, match=r"the index offers: plan9/x\\x1b\]0;owned") as info:
        make_client().resolve(ref_on(hostile))
    assert "\x1b" not in str(info.value)


@pytest.mark.parametrize("claimed,reason", [
    ("sha256:" + "A" * 64, "the encoded part must be lower-case hex"),
    ("md5:" + "a" * 32, r"unsupported algorithm 'md5' \(supported: sha256, sha512\)"),
    ("sha256:abc", "sha256 needs 64 hex digits, got 3"),
])
def test_malformed_docker_content_digest_is_the_registrys_error(make_client: Make, hostile: Hostile,
                                                                claimed: str, reason: str) -> None:
    hostile.manifest("evil/app", "latest", make_image().manifest, mt.OCI_MANIFEST, claimed=claimed)
    client = make_client()
    for call in (client.get_manifest, client.head_manifest):
        with pytest.raises(VerificationError, match=rf"manifest .*evil/app:latest: invalid Docker-Content-Digest "
                                                    rf"'{re.escape(claimed)}' from the registry: {reason}"):
            call(ref_on(hostile))
