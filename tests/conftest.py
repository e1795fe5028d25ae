"""Shared fixtures: real registries on loopback, a busybox image built by umoci, isolated stores."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.support.images import make_busybox_layout
from tests.support.registry import Registry, start_registry


def _registry(tmp_path_factory: pytest.TempPathFactory, mode: str) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp(f"registry-{mode}"), mode)
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP registry on 127.0.0.1."""
    yield from _registry(tmp_path_factory, "plain")


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry requiring htpasswd basic auth (user tester, password testpass)."""
    yield from _registry(tmp_path_factory, "auth")


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry on HTTPS with a certificate from a CA the test made (``registry.ca_cert``)."""
    yield from _registry(tmp_path_factory, "tls")


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI image layout holding the busybox image under tag ``busybox`` (built by umoci)."""
    return make_busybox_layout(tmp_path_factory.mktemp("busybox"))


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """An empty store root for one test (pass as ``--root``)."""
    root = tmp_path / "store"
    root.mkdir()
    return root


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's configuration and credentials out of tests: every test gets empty XDG
    directories, its own HOME, and its own STOCKADE_CONFIG (so /etc/stockade is not read).

    That configuration names the ``privileged`` policy as the default: tests of the engine's
    mechanics run what they ask for, as Docker would. The product's default is ``restricted``; the
    policy gate's tests (tests/stockade/test_gated_run*.py) name their policy or configuration."""
    config = tmp_path / "xdg" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[policy]\ndefault = "privileged"\n')
    monkeypatch.setenv("STOCKADE_CONFIG", str(config))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        d = tmp_path / "xdg" / var.lower()
        d.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(d))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "xdg" / "docker"))
    monkeypatch.setenv("HOME", str(tmp_path / "xdg" / "home"))
