"""A layer made by umoci (an independent implementation) unpacks to the tree umoci unpacks."""

from __future__ import annotations

import json
import subprocess  # nosec B404 # umoci with argument lists
from pathlib import Path

from engine.layers import apply_layer
from tests.engine.layers.conftest import LIMITS
from tests.engine.layers.tree import snapshot


def _blob(layout: Path, digest: str) -> Path:
    algorithm, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algorithm / hexdigest


def _layer_of(layout: Path, tag: str) -> tuple[Path, str, str]:
    """The single layer of ``layout:tag``: blob path, media type, and the config's diff_id."""
    index = json.loads((layout / "index.json").read_text())
    (desc,) = [m for m in index["manifests"]
               if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    manifest = json.loads(_blob(layout, desc["digest"]).read_text())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())
    (layer,) = manifest["layers"]
    return _blob(layout, layer["digest"]), layer["mediaType"], config["rootfs"]["diff_ids"][0]


def test_busybox_layer_matches_umoci_unpack(busybox_layout: Path, tmp_path: Path) -> None:
    blob, media_type, diff_id = _layer_of(busybox_layout, "busybox")
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{busybox_layout}:busybox",  # nosec B603 B607
                    str(bundle)], check=True, capture_output=True)
    ours = tmp_path / "ours"
    ours.mkdir()
    with blob.open("rb") as f:
        stats = apply_layer(f, ours, media_type=media_type, limits=LIMITS, mode="merge")
    assert stats.diff_id == diff_id
    theirs = snapshot(bundle / "rootfs")
    assert len(theirs) > 250  # busybox and its applet links
    assert snapshot(ours) == theirs
