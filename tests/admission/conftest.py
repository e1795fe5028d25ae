"""Fixtures for the webhook tests: certificates, signed and unsigned images, a policy, a running server.

Every image is the busybox fixture with its own config label, so each has its own manifest digest
(verification is cached by digest: two repositories holding the same bytes would share a verdict).
The signed image is signed with ``stockade sign --key``, as a release pipeline would.
"""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 # umoci with argument lists
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.admission.webhook import Webhook, make_certs, start_webhook
from tests.support.cli import stockade
from tests.support.images import skopeo_push
from trust.keys import generate, write_key_pair

POLICY = """\
apiVersion: stockade.dev/v1
kind: Policy
metadata: {{name: webhook-test, revision: 3}}
spec:
  profile: restricted
  signatures:
    - images: ["{registry}/**"]
      keys: [{{path: cosign.pub}}]
  modes:
    runtime.readOnlyRootFilesystem: warn
  rules:
    - id: no-debug-images
      expression: "!image.repository.endsWith('-debug')"
      message: debug images are for staging only
      mode: audit
    - id: legacy-namespace
      expression: "context.namespace != 'legacy'"
      message: the legacy namespace is being retired
      mode: warn
"""


@dataclass(frozen=True)
class Images:
    registry: str
    signed: str          # REGISTRY/signed/app:1, signed (legacy .sig)
    signed_digest: str
    bundle_signed: str   # REGISTRY/bundled/app:1, signed (OCI referrer bundle)
    unsigned: str
    debug: str           # REGISTRY/tools/app-debug:1, signed; matches the audit-mode rule
    layout: Path
    key: Path
    pub: Path
    env: dict[str, str]  # for `stockade sign`: the key's password, an empty configuration

    def fresh(self, name: str, *, sign: bool = True) -> tuple[str, str]:
        """A new image (own digest) pushed as REGISTRY/NAME:1, signed unless asked not to."""
        return push_variant(self, name, sign=sign)


def push_variant(images: Images, name: str, *, sign: bool = True) -> tuple[str, str]:
    tag = name.replace("/", "-")
    subprocess.run(["umoci", "config", "--image", f"{images.layout}:busybox", "--tag", tag,  # nosec B603 B607
                    f"--config.label=stockade.test={name}"], check=True, capture_output=True)
    ref = f"{images.registry}/{name}:1"
    digest = skopeo_push(images.layout, tag, ref)
    if sign:
        r = stockade("sign", "--key", images.key, ref, env=images.env)
        assert r.returncode == 0, r.stderr
    return ref, digest


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("webhook-certs"))


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory, registry, busybox_layout: Path) -> Images:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("webhook-images")
    layout = work / "oci"
    shutil.copytree(busybox_layout, layout)
    key, pub = write_key_pair(generate("ecdsa-p256"), b"pw", work / "cosign")
    (work / "config.toml").write_text("")
    env = {"STOCKADE_PASSWORD": "pw", "STOCKADE_CONFIG": str(work / "config.toml")}
    base = Images(registry.host, "", "", "", "", "", layout, key, pub, env)
    signed, signed_digest = push_variant(base, "signed/app")
    unsigned, _ = push_variant(base, "unsigned/app", sign=False)
    debug, _ = push_variant(base, "tools/app-debug")
    bundled, _ = push_variant(base, "bundled/app", sign=False)
    r = stockade("sign", "--key", key, "--format", "bundle", bundled, env=env)
    assert r.returncode == 0, r.stderr
    return Images(registry.host, signed, signed_digest, bundled, unsigned, debug, layout, key, pub, env)


def write_policy(directory: Path, images: Images, registry_glob: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(images.pub, directory / "cosign.pub")
    policy = directory / "policy.yaml"
    policy.write_text(POLICY.format(registry=registry_glob or images.registry))
    return policy


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory, certs: Path, images: Images) -> Iterator[Webhook]:
    """One server for a test module, enforcing POLICY."""
    tmp = tmp_path_factory.mktemp("webhook")
    server = start_webhook(tmp, certs, write_policy(tmp / "policy", images))
    yield server
    server.stop()
