"""Helpers for the policy tests: real P-256 keys, policy files on disk, input documents."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from policies import Policy, load_policy


def make_key(directory: Path, name: str) -> tuple[Path, str]:
    """A real ECDSA P-256 public key as PEM, and its key id as trust computes it."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = directory / name
    path.write_bytes(pem)
    return path, hashlib.sha256(der).hexdigest()


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[[str], Path]:
    def write(body: str, name: str = "policy.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body).lstrip("\n"))
        return path
    return write


@pytest.fixture
def policy_from(write_policy: Callable[[str], Path]) -> Callable[[str], Policy]:
    """Load a policy from a ``spec:`` body (apiVersion, kind and metadata added)."""
    def load(spec: str) -> Policy:
        body = "apiVersion: stockade.dev/v1\nkind: Policy\nmetadata:\n  name: test\nspec:\n" + \
            textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ") + "\n"
        return load_policy(str(write_policy(body)))
    return load


def hardened_container(**overrides: Any) -> dict[str, Any]:
    """A container that satisfies ``restricted``; keyword arguments replace fields."""
    c: dict[str, Any] = {"user": {"uid": 1000, "gid": 1000}, "readOnlyRootFilesystem": True, "privileged": False,
                         "noNewPrivileges": True, "capabilities": {"drop": ["ALL"], "add": []},
                         "seccomp": {"type": "RuntimeDefault"},
                         "namespaces": {"network": "private", "pid": "private", "ipc": "private", "uts": "private"},
                         "mounts": [], "resources": {"memory": 256 * 2**20, "cpus": 1.0, "pids": 100}}
    c.update(overrides)
    return c


def document(reference: str = "registry.example.com/org/app:1.0", **container: Any) -> dict[str, Any]:
    return {"image": {"reference": reference, "digest": "sha256:" + "a" * 64, "config": {"User": "1000"}},
            "container": hardened_container(**container)}


def rules(decision: Any, bucket: str = "violations") -> set[str]:
    return {r.finding.rule for r in getattr(decision, bucket)}
