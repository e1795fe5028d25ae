"""Fixtures shared by the registry, store and image CLI tests (imported by their conftest files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from engine.config import Config, Paths, RegistriesConfig, UnpackConfig
from engine.records import replace
from engine.registry.client import RegistryClient
from tests.engine.registry.hostile import Hostile, start_hostile
from tests.engine.registry.tokenauth import TokenRegistry, start_token_registry
from tests.support.images import skopeo_push
from tests.support.registry import Registry


@dataclass(frozen=True)
class Pushed:
    """An image an independent tool (skopeo) put in a registry, and the digest it reported."""

    ref: str
    digest: str


def make_config(*, unpack: dict[str, Any] | None = None, **registries: Any) -> Config:
    """A configuration with test-friendly retries and timeouts, overridable per test."""
    reg = {"retries": 1, "timeout": 10.0, **registries}
    return Config(registries=replace(RegistriesConfig(), **reg), unpack=replace(UnpackConfig(), **(unpack or {})))


@pytest.fixture(autouse=True)
def _auth_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credentials go to a per-test file, never to /etc/stockade (tests run as root)."""
    path = tmp_path / "auth" / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(path))
    return path


@pytest.fixture(scope="session")
def pushed_busybox(registry: Registry, busybox_layout: Path) -> Pushed:
    ref = f"{registry.host}/ns/busybox:latest"
    return Pushed(ref, skopeo_push(busybox_layout, "busybox", ref))


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    reg = start_token_registry(tmp_path_factory.mktemp("token-registry"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.default(root=tmp_path / "root")


@pytest.fixture
def make_client(paths: Paths) -> Iterator[Callable[..., RegistryClient]]:
    """``make_client(config=None, **client_kwargs)``: clients closed when the test ends."""
    clients: list[RegistryClient] = []

    def make(config: Config | None = None, **kwargs: Any) -> RegistryClient:
        client = RegistryClient(config or make_config(), paths, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = start_hostile()
    try:
        yield server
    finally:
        server.stop()
