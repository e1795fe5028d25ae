"""TUF fixtures: repositories made by our repository tools, served by a real HTTP server on loopback."""

from __future__ import annotations

import functools
import http.server
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest

from trust.tuf import repository

PASSWORD = "correct horse battery staple"
VECTORS = Path("/work/shared/vectors")


def password() -> bytes:
    return PASSWORD.encode()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """python's static file server, recording each requested path instead of logging it."""

    def __init__(self, *args: object, requests: list[str], **kwargs: object) -> None:
        self._requests = requests
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._requests.append(self.path)
        super().do_GET()


@dataclass
class Served:
    """A directory served over HTTP on 127.0.0.1 (what any static web server would do)."""

    directory: Path
    url: str  # with a trailing slash
    requests: list[str]  # paths requested so far, in order

    def metadata_url(self, sub: str = "metadata") -> str:
        return f"{self.url}{sub}/"


@pytest.fixture
def serve() -> Iterator[Callable[[Path], Served]]:
    """``serve(directory)`` starts python's http.server for ``directory`` until the test ends."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(directory: Path) -> Served:
        requests: list[str] = []
        handler = functools.partial(_Handler, directory=str(directory), requests=requests)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return Served(directory, f"http://127.0.0.1:{server.server_address[1]}/", requests)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class TufRepo:
    """A repository made by ``trust init``, served over loopback, and a client cache for it."""

    path: Path
    served: Served
    cache: Path

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def root(self) -> Path:
        return self.path / "metadata" / "1.root.json"

    def metadata(self, name: str) -> Path:
        return self.path / "metadata" / name


@pytest.fixture
def tuf_repo(tmp_path: Path, serve: Callable[[Path], Served]) -> TufRepo:
    path = tmp_path / "tuf"
    repository.init(path, password)
    # Serve only metadata/, as the README says: keys/ must never be reachable over HTTP.
    return TufRepo(path, serve(path / "metadata"), tmp_path / "tuf-cache")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)
