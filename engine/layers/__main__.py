"""``python -m engine.layers apply BLOB DEST``: apply one layer in a process of its own.

Unpacking for a rootless store runs as root of a user namespace (entered with newuidmap/newgidmap
before this process starts), or as the plain user when no namespace is available: in both cases the
credentials belong to the process, so the unpacking gets one. It prints the LayerStats as JSON on
stdout; a refused layer prints ``stockade: error: …`` on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from engine.config import UnpackConfig, parse_size
from engine.layers.apply import apply_layer
from engine.layers.model import LayerError, UnpackLimits


def main(argv: list[str] | None = None) -> int:
    defaults = UnpackConfig()
    parser = argparse.ArgumentParser(prog="python -m engine.layers")
    sub = parser.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="apply one layer blob to a directory")
    apply.add_argument("blob", type=Path, help="the layer blob (compressed as --media-type says)")
    apply.add_argument("dest", type=Path, help="the directory to apply it to")
    apply.add_argument("--media-type", default="application/vnd.oci.image.layer.v1.tar+gzip")
    apply.add_argument("--mode", choices=("diff", "merge"), default="diff")
    apply.add_argument("--rootless", action="store_true")
    apply.add_argument("--max-bytes", type=parse_size, default=defaults.max_layer_size)
    apply.add_argument("--max-entries", type=int, default=defaults.max_entries)
    args = parser.parse_args(argv)
    limits = UnpackLimits(max_bytes=args.max_bytes, max_entries=args.max_entries)
    try:
        with open(args.blob, "rb") as blob:
            stats = apply_layer(blob, args.dest, media_type=args.media_type, limits=limits,
                                rootless=args.rootless, mode=args.mode)
    except (LayerError, OSError) as exc:
        print(f"stockade: error: {exc}", file=sys.stderr)
        return 1
    json.dump(asdict(stats), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
