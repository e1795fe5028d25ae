"""Shared fixtures for the trust tests: the public vectors and freshly generated keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from trust import keys

VECTORS = Path("/work/shared/vectors")
if not VECTORS.is_dir():  # a clone next to the shared folder
    VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.skip("the public test vectors (../shared/vectors) are not present")
    return VECTORS


@pytest.fixture(scope="session")
def ecdsa_key() -> keys.PrivateKey:
    return keys.generate("ecdsa-p256")


@pytest.fixture(scope="session")
def ed25519_key() -> keys.PrivateKey:
    return keys.generate("ed25519")


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real registry client with the test's isolated configuration."""
    from engine.config import Paths, load_config
    from engine.registry import RegistryClient

    c = RegistryClient(load_config(), Paths.default(root=tmp_path / "store"))
    yield c
    c.close()


@pytest.fixture
def image(request: pytest.FixtureRequest, registry, busybox_layout: Path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The busybox image pushed (by skopeo) to a repository of its own: (reference, digest)."""
    from tests.support.images import skopeo_push

    repo = "t/" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")[:60]
    ref = f"{registry.host}/{repo}:1"
    return ref, skopeo_push(busybox_layout, "busybox", ref)


@pytest.fixture
def key_files(tmp_path: Path, ecdsa_key: keys.PrivateKey) -> tuple[Path, Path]:
    """The session ECDSA key written as PKCS#8 (password ``pw``) and its public key."""
    return keys.write_key_pair(ecdsa_key, b"pw", tmp_path / "signer")
