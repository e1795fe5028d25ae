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
