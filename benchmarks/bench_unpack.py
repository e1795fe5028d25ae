"""Unpacking a Debian minbase layer: Stockade's ``apply_layer`` against ``tar -xzf``, same run.

The layer is built once (``debootstrap --variant=minbase bookworm``, apt's downloaded .debs removed,
``tar --numeric-owner --xattrs -czf``: about 60 MB of gzip, 175 MiB and 6,700 entries unpacked) and
cached under ``$STOCKADE_BENCH_WORK`` (default ``/var/tmp/stockade-bench``). Building it needs root
and the network; later runs reuse the blob.

Cases, interleaved, each into a fresh directory on the same filesystem, dirty pages synced before
every sample so one sample's writeback does not land in the next:

* ``stockade``: ``python -m engine.layers apply`` as a process (interpreter start included), so it
  compares with ``tar -xzf`` as a user would see both;
* ``stockade-in-process``: ``apply_layer`` alone, without the interpreter start;
* ``tar -xzf``: the peer (GNU tar, running gzip in a second process);
* ``inflate+sha256``, ``gzip -dc``: the decompression floors of each side, to say what bounds them.

Target: ``stockade / tar -xzf`` at most 1.0.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess  # nosec B404 # peers and debootstrap run with argument lists
import sys
import time
from pathlib import Path

from benchmarks.harness import Benchmark, run_timed

WORK = Path(os.environ.get("STOCKADE_BENCH_WORK", "/var/tmp/stockade-bench"))
BLOB = WORK / "debian-minbase.tar.gz"
MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
ROUNDS = int(os.environ.get("STOCKADE_BENCH_UNPACK_ROUNDS", "7"))
# The venv's interpreter as invoked: harness.PYTHON resolves the venv's symlink to the system
# interpreter, which lacks the venv's packages (isal, zstandard).
PYTHON = sys.executable


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)  # nosec B603


def build_layer() -> Path:
    """The cached Debian minbase layer blob, built on first use."""
    if BLOB.exists():
        return BLOB
    rootfs = WORK / "debian-rootfs"
    if not rootfs.exists():
        partial = WORK / "debian-rootfs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        WORK.mkdir(parents=True, exist_ok=True)
        _run("debootstrap", "--variant=minbase", "bookworm", str(partial),
             "http://deb.debian.org/debian")
        os.rename(partial, rootfs)
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    tmp = BLOB.with_suffix(".tmp")
    _run("tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-czf", str(tmp), ".")
    os.replace(tmp, BLOB)
    return BLOB


def _tree_size(root: Path) -> tuple[int, int]:
    """(entries, bytes of regular files) under root: both sides must produce the same tree."""
    entries = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        entries += len(dirnames) + len(filenames)
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            size += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return entries, size


def main() -> None:
    from engine.layers import UnpackLimits, apply_layer
    from engine.layers.compression import DecompressedStream

    blob = build_layer()
    scratch = WORK / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    limits = UnpackLimits(max_bytes=32 * 1024**3, max_entries=2_000_000)
    dests = {name: scratch / name.replace(" ", "_").replace("+", "_")
             for name in ("stockade", "stockade-in-process", "tar -xzf")}

    def fresh(name: str) -> None:
        dest = dests.get(name)
        if dest is not None:
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
        os.sync()

    def in_process() -> float:
        start = time.perf_counter()
        with blob.open("rb") as f:
            apply_layer(f, dests["stockade-in-process"], media_type=MEDIA_TYPE, limits=limits)
        return time.perf_counter() - start

    def inflate_only() -> float:
        start = time.perf_counter()
        with blob.open("rb") as f, DecompressedStream(f, MEDIA_TYPE, limits.max_bytes) as stream:
            for _ in stream.chunks():
                pass
        return time.perf_counter() - start

    bench = Benchmark("unpack", "apply a Debian minbase layer (gzip) vs tar -xzf, fresh directory")
    bench.case("stockade", lambda: run_timed(
        [PYTHON, "-m", "engine.layers", "apply", "--media-type", MEDIA_TYPE, str(blob),
         str(dests["stockade"])]))
    bench.case("stockade-in-process", in_process)
    bench.case("tar -xzf", lambda: run_timed(["tar", "-xzf", str(blob), "-C", str(dests["tar -xzf"])]))
    bench.case("inflate+sha256", inflate_only)
    bench.case("gzip -dc", lambda: run_timed(["gzip", "-dc", str(blob)]))  # stdout discarded
    stats = bench.run(rounds=ROUNDS, warmup=1, before_each=fresh)

    ours, theirs = _tree_size(dests["stockade"]), _tree_size(dests["tar -xzf"])
    if ours != theirs:
        raise RuntimeError(f"trees differ: stockade {ours} vs tar {theirs}")
    bench.report(stats, [("stockade", "tar -xzf"), ("stockade-in-process", "tar -xzf"),
                         ("inflate+sha256", "gzip -dc")], unit="ms",
                 extra={"blob_bytes": blob.stat().st_size, "entries": ours[0],
                        "file_bytes": ours[1], "python": PYTHON})
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
