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


# A pod spec that satisfies ``restricted`` (pod- and container-level securityContext both set).
COMPLIANT_POD_SPEC = """
securityContext:
  runAsNonRoot: true
  runAsUser: 1000
  seccompProfile: {type: RuntimeDefault}
containers:
  - name: app
    image: registry.example.com/org/app:1.0
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
"""


def compliant_workload(kind: str, name: str = "w") -> str:
    """A Kubernetes manifest of ``kind`` (Pod, CronJob, or another pod-template workload) around
    ``COMPLIANT_POD_SPEC``, indented where that kind keeps its pod spec."""
    spec = textwrap.indent(COMPLIANT_POD_SPEC.strip(), " " * {"Pod": 2, "CronJob": 10}.get(kind, 6))
    if kind == "Pod":
        return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{spec}\n"
    if kind == "CronJob":
        return (f"apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: {name}}}\nspec:\n  schedule: '* * * * *'\n"
                f"  jobTemplate:\n    spec:\n      template:\n        spec:\n{spec}\n")
    return (f"apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: {name}, namespace: prod}}\nspec:\n"
            f"  template:\n    spec:\n{spec}\n")


def document(reference: str = "registry.example.com/org/app:1.0", **container: Any) -> dict[str, Any]:
    return {"image": {"reference": reference, "digest": "sha256:" + "a" * 64, "config": {"User": "1000"}},
            "container": hardened_container(**container)}


def rules(decision: Any, bucket: str = "violations") -> set[str]:
    return {r.finding.rule for r in getattr(decision, bucket)}
