"""The client over an in-memory transport: the seam that keeps the logic testable without sockets.

Most registry tests use the real registry or a loopback impostor; this one shows the ``Transport``
interface is all the client needs (the trust tests can drive the client the same way).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pytest

from engine.config import Paths
from engine.reference import Reference
from engine.registry import mediatypes as mt
from engine.registry.client import RegistryClient
from engine.registry.errors import VerificationError
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.oci import digest, make_image


@dataclass
class Canned:
    status: int
    url: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stream = io.BytesIO(self.body)

    def header(self, name: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.headers.items()}
        if name.lower() == "content-length":
            return lowered.get("content-length", str(len(self.body)))
        return lowered.get(name.lower())

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        return self._stream.readinto(buffer)

    def close(self) -> None:
        self._stream.close()


class MemoryTransport:
    """Answers from a list of (method, path) -> responses; each route serves its answers in turn."""

    def __init__(self, routes: dict[tuple[str, str], list[Canned]]) -> None:
        self.routes = routes
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: object,
                timeout: float, tls: object) -> Canned:
        path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
        self.sent.append((method, url, dict(headers)))
        answers = self.routes.get((method, path.split("?")[0]))
        if not answers:
            return Canned(404, url)
        return dataclasses.replace(answers.pop(0) if len(answers) > 1 else answers[0])  # a fresh body

    def close(self) -> None:
        return None


def test_client_runs_on_any_transport(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.registry.session as session

    monkeypatch.setattr(session, "BACKOFF_BASE", 0.0)
    parts = make_image()
    base = "http://127.0.0.1:1"
    manifest_path = "/v2/mem/app/manifests/v1"
    transport = MemoryTransport({
        ("GET", "/v2/"): [Canned(200, base, b"{}")],
        ("GET", manifest_path): [Canned(503, base), Canned(200, base, parts.manifest,
                                                           {"Content-Type": mt.OCI_MANIFEST})],
        ("GET", f"/v2/mem/app/blobs/{digest(parts.config)}"): [
            Canned(307, base, headers={"Location": "https://storage.example/config"})],
    })
    transport.routes[("GET", "/config")] = [Canned(200, "https://storage.example/config", parts.config)]
    client = RegistryClient(make_config(retries=2), Paths.default(root=tmp_path / "root"), transport=transport)
    ref = Reference.parse("127.0.0.1:1/mem/app:v1")
    result = client.get_manifest(ref)  # after one 503, retried
    assert result.digest == parts.digest
    manifest = client.resolve(ref).manifest
    assert client.fetch_blob(ref, manifest.config) == parts.config  # followed the redirect
    assert [m for m, u, _ in transport.sent].count("GET") >= 4
    transport.routes[("GET", manifest_path)] = [Canned(200, base, parts.manifest + b" ",
                                                       {"Content-Type": mt.OCI_MANIFEST,
                                                        "Docker-Content-Digest": parts.digest})]
    with pytest.raises(VerificationError, match="does not match the digest the registry claims"):
        client.get_manifest(ref)
