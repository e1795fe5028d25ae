"""A small registry impostor on loopback that says whatever a test tells it to.

The real registry cannot lie, so adversarial tests (wrong digests, size lies, endless manifests,
redirect loops, dropped connections, 5xx storms) talk to this server instead. Each route is a
function of the request handler; helpers build the common lies. It records every request so a test
can check, for example, that no Authorization header followed a redirect to another host.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Responder = Callable[[BaseHTTPRequestHandler], None]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"",
          headers: dict[str, str] | None = None, *, length: int | None = None) -> None:
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.end_headers()
    if handler.command != "HEAD" and body:
        handler.wfile.write(body)


@dataclass
class Hostile:
    """The server; ``routes[(method, path)]`` answers a request (path without the query)."""

    server: ThreadingHTTPServer
    routes: dict[tuple[str, str], Responder] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    tls: bool = False

    @property
    def host(self) -> str:
        return f"{self.server.server_address[0]}:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def on(self, method: str, path: str, responder: Responder) -> None:
        self.routes[(method, path)] = responder

    def manifest(self, repo: str, ref: str, body: bytes, media_type: str, *,
                 claimed: str | None = None) -> None:
        headers = {"Content-Type": media_type, "Docker-Content-Digest": claimed or digest_of(body)}
        for method in ("GET", "HEAD"):
            self.on(method, f"/v2/{repo}/manifests/{ref}",
                    lambda h, b=body: reply(h, 200, b, headers))

    def blob(self, repo: str, digest: str, body: bytes, *, length: int | None = None,
             pace: float = 0.0) -> None:
        """Serve a blob (honouring Range); ``pace`` seconds of sleep per 64 KiB make it slow."""
        def serve(h: BaseHTTPRequestHandler) -> None:
            rng = h.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                data = body[start:]
                reply(h, 206, data, {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
                return
            if not pace:
                reply(h, 200, body, {"Content-Type": "application/octet-stream"}, length=length)
                return
            reply(h, 200, b"", {"Content-Type": "application/octet-stream"}, length=len(body))
            for offset in range(0, len(body), 65536):
                h.wfile.write(body[offset:offset + 65536])
                time.sleep(pace)
        for method in ("GET", "HEAD"):
            self.on(method, f"/v2/{repo}/blobs/{digest}", serve)

    def image(self, repo: str, tag: str, config: bytes, layers: list[bytes], *,
              layer_type: str = "application/vnd.oci.image.layer.v1.tar+gzip",
              pace: float = 0.0) -> tuple[bytes, str]:
        """Serve a whole (honest) image; return its manifest bytes and digest."""
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": digest_of(data), "size": len(data)}
                       for data in layers]}).encode()
        self.manifest(repo, tag, manifest, "application/vnd.oci.image.manifest.v1+json")
        self.manifest(repo, digest_of(manifest), manifest, "application/vnd.oci.image.manifest.v1+json")
        self.blob(repo, digest_of(config), config)
        for data in layers:
            self.blob(repo, digest_of(data), data, pace=pace)
        return manifest, digest_of(manifest)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_hostile(context: ssl.SSLContext | None = None, address: str = "127.0.0.1") -> Hostile:
    """Serve on ``address`` (loopback unless a test needs a host the client must not treat as one)."""
    holder: dict[str, Hostile] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet server
            return

        def _dispatch(self) -> None:
            hostile = holder["h"]
            path = self.path.split("?", 1)[0]
            hostile.seen.append(Seen(self.command, self.path, dict(self.headers)))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            responder = hostile.routes.get((self.command, path))
            if responder is None and path == "/v2/":
                reply(self, 200, b"{}", {"Content-Type": "application/json"})
                return
            if responder is None:
                body = json.dumps({"errors": [{"code": "NAME_UNKNOWN", "message": "not here"}]}).encode()
                reply(self, 404, body, {"Content-Type": "application/json"})
                return
            try:
                responder(self)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    server = ThreadingHTTPServer((address, 0), Handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    hostile = Hostile(server=server, tls=context is not None)
    holder["h"] = hostile
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hostile
