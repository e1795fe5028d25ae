"""The whole TUF flow over loopback, as a user runs it: a real registry, a served TUF repository.

``trust init`` -> push busybox with skopeo -> ``trust sign`` (resolves the tag through the registry)
-> serve ``metadata/`` with http.server -> ``trust verify IMAGE:TAG --tuf URL --tuf-root root.json``.
Then every way it must fail: the tag moved, metadata expired, a rollback, a wrong root, an unsigned
tag; and key rotation, after which a client that pinned the first root still verifies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 # umoci and setpriv with argument lists
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest

from tests.support.cli import REPO, stockade
from tests.support.images import skopeo_push
from tests.support.registry import Registry
from trust.tuf import repository

from .conftest import PASSWORD, Served, password

ENV = {"STOCKADE_PASSWORD": PASSWORD}


@dataclass
class Flow:
    """A signed tag in a registry, a TUF repository for it served on loopback, a client store."""

    registry: Registry
    layout: Path
    repo: Path
    served: Served
    store: Path  # --root of the verifying client: its TUF cache lives under <store>/cache/tuf
    image: str
    digest: str

    @property
    def root(self) -> Path:
        return self.repo / "metadata" / "1.root.json"

    def verify(self, image: str | None = None, *, root: Path | None = None,
               output: str = "table") -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        return stockade("trust", "verify", image or self.image, "--tuf", self.served.url,
                        "--tuf-root", root or self.root, "-o", output, root=self.store, env=ENV)

    def trust(self, *args: str | Path) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        r = stockade("trust", *args, "--repo", self.repo, env=ENV)
        assert r.returncode == 0, r.stderr
        return r


@pytest.fixture
def flow(request: pytest.FixtureRequest, registry: Registry, busybox_layout: Path, tmp_path: Path,
         serve: Callable[[Path], Served]) -> Flow:
    layout = tmp_path / "oci"
    shutil.copytree(busybox_layout, layout)
    image = f"{registry.host}/tuf/{request.node.name.replace('_', '-').lower()[:60]}:1.0"
    digest = skopeo_push(layout, "busybox", image)
    repo = tmp_path / "tuf"
    r = stockade("trust", "init", "--repo", repo, env=ENV)
    assert r.returncode == 0, r.stderr
    f = Flow(registry, layout, repo, serve(repo / "metadata"), tmp_path / "store", image, digest)
    r = stockade("trust", "sign", image, "--repo", repo, "-o", "json", env=ENV)
    assert r.returncode == 0, r.stderr
    signed = json.loads(r.stdout)
    assert signed["target"] == image and signed["digest"] == digest
    return f


def move_tag(flow: Flow) -> str:
    """Push a different image (other config, so another manifest digest) under the same tag."""
    subprocess.run(["umoci", "config", "--image", f"{flow.layout}:busybox", "--tag", "moved",
                    "--config.env=MOVED=1"], check=True, capture_output=True)  # nosec B603 B607
    moved = skopeo_push(flow.layout, "moved", flow.image)
    assert moved != flow.digest
    return moved


def test_signed_tag_verifies(flow: Flow) -> None:
    r = flow.verify(output="json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["verified"] is True and data["digest"] == flow.digest and data["target"] == flow.image
    assert data["custom"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    human = flow.verify()
    assert human.returncode == 0 and f"Verified {flow.image} -> {flow.digest}" in human.stdout
    listing = json.loads(stockade("trust", "inspect", "--tuf", flow.served.url, "--tuf-root",
                                  flow.root, flow.image, "-o", "json", root=flow.store).stdout)
    assert listing["targets"][0]["digest"] == flow.digest


def test_tag_moved_without_resigning_is_refused(flow: Flow) -> None:
    moved = move_tag(flow)
    r = flow.verify()
    assert r.returncode == 1
    assert "moved without being signed again" in r.stderr and moved in r.stderr
    j = flow.verify(output="json")
    assert j.returncode == 1
    assert json.loads(j.stdout) == {"verified": False, "image": flow.image, "digest": moved,
                                    "reason": "digest-mismatch", "error": j.stderr.strip()
                                    .removeprefix("stockade: error: ")}
    # Signing the moved tag makes it verify again.
    flow.trust("sign", flow.image)
    assert flow.verify().returncode == 0


def test_expired_timestamp_is_refused(flow: Flow) -> None:
    # The repository's last re-signing happened 8 days ago (clock pinned through `now`), so its
    # 7-day timestamp has run out.
    repository.resign(flow.repo, ["timestamp"], password,
                      now=repository.utcnow() - timedelta(days=8))
    r = flow.verify()
    assert r.returncode == 1
    assert "has expired (timestamp.json is expired" in r.stderr
    flow.trust("resign")
    assert flow.verify().returncode == 0


def test_rollback_is_refused(flow: Flow) -> None:
    timestamp = flow.repo / "metadata" / "timestamp.json"
    old = timestamp.read_bytes()
    flow.trust("resign", "--role", "timestamp")
    assert flow.verify().returncode == 0  # the client has now seen timestamp v3
    timestamp.write_bytes(old)  # the server (or a mirror) serves v2 again
    r = flow.verify()
    assert r.returncode == 1
    assert "rollback" in r.stderr and "version 2 must be >= 3" in r.stderr


def test_wrong_root_is_refused(flow: Flow, tmp_path: Path) -> None:
    r = stockade("trust", "init", "--repo", tmp_path / "impostor", env=ENV)
    assert r.returncode == 0
    wrong = tmp_path / "impostor" / "metadata" / "1.root.json"
    r = flow.verify(root=wrong)
    assert r.returncode == 1
    assert "not signed by the keys of the trusted root" in r.stderr and str(wrong) in r.stderr


def test_unsigned_tag_is_refused(flow: Flow) -> None:
    other = flow.image.replace(":1.0", ":2.0")
    skopeo_push(flow.layout, "busybox", other)
    r = flow.verify(other)
    assert r.returncode == 1
    assert f"{other} is not signed in the TUF repository" in r.stderr


def test_key_rotation_keeps_old_clients_updating(flow: Flow) -> None:
    assert flow.verify().returncode == 0  # a client that trusts root v1, with a warm cache
    for role in ("timestamp", "snapshot", "targets/releases", "targets", "root"):
        flow.trust("key", "rotate", role)
    move_tag(flow)
    flow.trust("sign", flow.image)  # signed with the new keys only
    r = flow.verify(output="json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["versions"]["root"] == 5
    cold = stockade("trust", "verify", flow.image, "--tuf", flow.served.url, "--tuf-root", flow.root,
                    root=flow.store.parent / "fresh-store", env=ENV)
    assert cold.returncode == 0, cold.stderr


def test_sign_refuses_a_missing_tag(flow: Flow) -> None:
    before = (flow.repo / "metadata" / "timestamp.json").read_bytes()
    r = stockade("trust", "sign", flow.image.replace(":1.0", ":nope"), "--repo", flow.repo, env=ENV)
    assert r.returncode == 1 and r.stderr.startswith("stockade: error: ")
    assert (flow.repo / "metadata" / "timestamp.json").read_bytes() == before


# --- `stockade verify IMAGE:TAG --tuf URL --tuf-root FILE` (the verify verb, TUF alone) ----------

def stockade_verify(flow: Flow, image: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return stockade("verify", image, "--tuf", flow.served.url, "--tuf-root", flow.root, "-o", "json",
                    root=flow.store, env=ENV)


def test_verify_verb_with_tuf(flow: Flow) -> None:
    r = stockade_verify(flow, flow.image)
    assert r.returncode == 0, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["verified"] is True and verdict["digest"] == flow.digest
    assert verdict["tuf"]["target"] == flow.image and verdict["tuf"]["digest"] == flow.digest
    moved = move_tag(flow)
    r = stockade_verify(flow, flow.image)
    assert r.returncode == 1
    assert json.loads(r.stdout)["tuf"] == {
        **verdict["tuf"], "reason": "digest-mismatch",
        "error": f"the tag resolves to {moved}, but TUF says {flow.digest}"}


def test_verify_verb_tuf_only_human_output(flow: Flow) -> None:
    """With TUF alone there are no signatures to report: the verdict is the TUF check's, and the
    manifest is not called "NOT verified" when the tag verified."""
    r = stockade("verify", flow.image, "--tuf", flow.served.url, "--tuf-root", flow.root, root=flow.store, env=ENV)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"Verified {flow.image}", f"  TUF: tag target {flow.digest}"]
    unsigned = flow.image.replace(":1.0", ":unsigned")
    skopeo_push(flow.layout, "busybox", unsigned)
    r = stockade("verify", unsigned, "--tuf", flow.served.url, "--tuf-root", flow.root, root=flow.store, env=ENV)
    assert r.returncode == 1
    assert r.stdout.startswith(f"Verification FAILED for {unsigned}\n  TUF: ") and "NOT verified" not in r.stdout


def test_verify_verb_cache_does_not_carry_trust_to_another_tag(flow: Flow) -> None:
    """A cached positive verdict for the signed tag must not vouch for an unsigned tag that points
    at the same digest: TUF signs tags, not digests."""
    assert stockade_verify(flow, flow.image).returncode == 0  # now cached for this digest
    unsigned = flow.image.replace(":1.0", ":unsigned")
    skopeo_push(flow.layout, "busybox", unsigned)
    r = stockade_verify(flow, unsigned)
    assert r.returncode == 1, r.stdout
    tuf = json.loads(r.stdout)["tuf"]
    assert "is not signed in the TUF repository" in tuf["error"] and tuf["reason"] == "unknown-tag"


def test_rootless_client_keeps_its_tuf_cache_in_xdg_cache_home(flow: Flow) -> None:
    """An unprivileged user (nobody) verifies the tag; its verified metadata lands under
    $XDG_CACHE_HOME/stockade/tuf, never in the root layout."""
    home = Path(tempfile.mkdtemp(prefix="tuf-rootless-"))
    try:
        os.chmod(home, 0o755)
        root = home / "root.json"
        shutil.copy(flow.root, root)
        for sub in ("cache", "config", "data"):
            (home / sub).mkdir()
        (home / "config.toml").write_text("")
        for path in [home, *home.iterdir()]:
            os.chown(path, 65534, 65534)
        env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
               "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
               "STOCKADE_CONFIG": str(home / "config.toml"), "PYTHONPATH": str(REPO),
               "PATH": os.environ["PATH"]}
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-m", "stockade", "trust", "verify", flow.image,
                            "--tuf", flow.served.url, "--tuf-root", str(root)],
                           env=env, capture_output=True, text=True, cwd=home,
                           timeout=120)  # nosec B603 B607
        assert r.returncode == 0, r.stderr
        caches = list((home / "cache" / "stockade" / "tuf").iterdir())
        assert len(caches) == 1
        assert (caches[0] / "metadata" / "timestamp.json").stat().st_uid == 65534
    finally:
        shutil.rmtree(home, ignore_errors=True)
