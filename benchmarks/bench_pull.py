"""Pulling a 257 MiB, five-layer image of incompressible data from a local registry, side by side.

The image is the note's "padded" image: busybox plus four ``umoci insert`` layers of 64 MiB of
random data each (gzip of random data is random data, so the compressed blobs are ~64 MiB too). It
is built once with umoci and cached under ``$STOCKADE_BENCH_WORK/pull`` (default
``/var/tmp/stockade-bench/pull``); every run starts Debian's docker-registry on loopback and pushes
it there with skopeo.

Cases, interleaved, each into a fresh destination with dirty pages synced before every sample:

* ``stockade pull``: the CLI as a user runs it (interpreter start included): download, verify digest
  and size, write the blobs, **and unpack every layer** (verifying diff_ids) so ``run`` finds them;
* ``skopeo copy``: ``skopeo copy docker://… oci:…``: download, verify, write blobs (no unpacking);
* ``podman pull``: a throwaway ``--root``/``--runroot`` with the overlay driver: download and unpack;
* ``stockade blobs only``: in-process, the layer blobs fetched, verified and committed (fsync) in
  parallel exactly as ``pull`` does, without unpacking: the like-for-like figure against skopeo,
  and the part of ``stockade pull`` that is the network and the first sha256 pass.

Target: ``stockade pull / skopeo copy`` at most 1.0. Printed beside the times: the data size and
each case's throughput, the CPU seconds (user + system) each command used, and the floors that say
what bounds a pull here (one core's sha256 rate, the disk's write rate).

Our packages are byte-compiled first (``make setup`` does the same): in a shell with
``PYTHONDONTWRITEBYTECODE=1`` a module edited since then is otherwise compiled again on every
``stockade`` call, ~10 ms each, which measures the edit, not the pull.

``STOCKADE_BENCH_PULL_IOLOAD=1`` runs a writer beside the rounds (64 MiB files, each fsynced, in a
loop), as other work on this shared machine does; the pull's sensitivity to it is part of its cost.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess  # nosec B404 # umoci, skopeo and podman run with argument lists
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from benchmarks.harness import REPO, Benchmark, run_timed, stockade_argv
from tests.support.images import populate_busybox_rootfs
from tests.support.registry import start_registry

WORK = Path(os.environ.get("STOCKADE_BENCH_WORK", "/var/tmp/stockade-bench")) / "pull"
LAYOUT = WORK / "oci"
TAG = "padded"
PAD_LAYERS, PAD_MIB, FILES_PER_LAYER = 4, 64, 4
ROUNDS = int(os.environ.get("STOCKADE_BENCH_PULL_ROUNDS", "5"))
IOLOAD = os.environ.get("STOCKADE_BENCH_PULL_IOLOAD", "") not in ("", "0")
PACKAGES = ("engine", "trust", "policies", "hardening", "stockade")


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout  # nosec B603


def build_image() -> Path:
    """The cached OCI layout holding the padded image, built with umoci on first use."""
    if (LAYOUT / "index.json").exists():
        return LAYOUT
    WORK.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=WORK, prefix="build-"))
    layout, bundle = staging / "oci", staging / "bundle"
    _run("umoci", "init", "--layout", str(layout))
    _run("umoci", "new", "--image", f"{layout}:{TAG}")
    _run("umoci", "unpack", "--image", f"{layout}:{TAG}", str(bundle))
    populate_busybox_rootfs(bundle / "rootfs")
    _run("umoci", "repack", "--image", f"{layout}:{TAG}", str(bundle))
    _run("umoci", "config", "--image", f"{layout}:{TAG}", "--config.cmd=/bin/sh", "--os", "linux",
         "--architecture", "amd64")
    shutil.rmtree(bundle)
    for layer in range(1, PAD_LAYERS + 1):  # one `umoci insert` per layer (repack would not stack)
        pad = staging / "pad"
        shutil.rmtree(pad, ignore_errors=True)
        pad.mkdir()
        for n in range(FILES_PER_LAYER):
            with open(pad / f"f{n}.bin", "wb") as f:
                for _ in range(PAD_MIB // FILES_PER_LAYER):
                    f.write(os.urandom(1024 * 1024))
        _run("umoci", "insert", "--image", f"{layout}:{TAG}", str(pad), f"/pad{layer}")
    shutil.rmtree(staging / "pad")
    _run("umoci", "gc", "--layout", str(layout))
    os.rename(layout, LAYOUT)
    shutil.rmtree(staging)
    return LAYOUT


def _sha256_rate(size: int = 256 * 1024 * 1024) -> float:
    """MiB/s of one core hashing with hashlib.sha256 in 1 MiB updates."""
    block = os.urandom(1024 * 1024)
    h = hashlib.sha256()
    start = time.perf_counter()
    for _ in range(size // len(block)):
        h.update(block)
    return size / (1024 * 1024) / (time.perf_counter() - start)


def _write_rate(directory: Path, size: int = 256 * 1024 * 1024) -> float:
    """MiB/s of writing and fsyncing one file on the destination's filesystem."""
    block = os.urandom(1024 * 1024)
    path = directory / "write-rate.bin"
    start = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    elapsed = time.perf_counter() - start
    path.unlink()
    return size / (1024 * 1024) / elapsed


class ChildCPU:
    """CPU seconds (user + system) of the child processes a case runs, per sample."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def measure(self, name: str, sample: Callable[[], float]) -> Callable[[], float]:
        def run() -> float:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            elapsed = sample()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.samples.setdefault(name, []).append(
                after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            return elapsed
        return run

    def medians(self) -> dict[str, float]:
        return {name: round(statistics.median(s), 3) for name, s in self.samples.items()}


class IOLoad:
    """A writer beside the benchmark: 64 MiB files written and fsynced in a loop until stopped."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        block = os.urandom(1024 * 1024)
        self.directory.mkdir(parents=True, exist_ok=True)
        n = 0
        while not self._stop.is_set():
            with open(self.directory / f"load{n % 4}", "wb") as f:
                for _ in range(64):
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
            n += 1

    def __enter__(self) -> "IOLoad":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        shutil.rmtree(self.directory, ignore_errors=True)


def _blobs_only(ref: str, root: Path) -> float:
    """Fetch and commit every layer blob in parallel as a pull does, without unpacking them."""
    from concurrent.futures import ThreadPoolExecutor

    from engine.config import Config, Paths
    from engine.reference import Reference
    from engine.registry.client import RegistryClient
    from engine.store import Store

    start = time.perf_counter()
    config, paths = Config(), Paths.default(root=root)
    store, client = Store(paths, config), RegistryClient(config, paths)
    reference = Reference.parse(ref)
    layers = sorted(client.resolve(reference).manifest.layers, key=lambda d: d.size, reverse=True)
    store.layout.ensure()

    def fetch(desc: object) -> None:
        with store.blobs.ingest(desc.digest, desc.size, verify=False,  # type: ignore[attr-defined]
                                direct=True) as writer:
            if writer is not None:
                with client.open_blob(reference, desc) as reader:  # type: ignore[arg-type]
                    writer.copy_from(reader)
                writer.commit()

    with ThreadPoolExecutor(config.registries.max_parallel_downloads) as pool:
        list(pool.map(fetch, layers))
    client.close()
    return time.perf_counter() - start


def main() -> None:
    layout = build_image()
    for package in PACKAGES:  # what `make setup` does: measure the pull, not bytecode compilation
        compileall.compile_dir(str(REPO / package), quiet=1)
    runs = WORK / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    registry = start_registry(WORK / "registry", "plain")
    try:
        ref = f"{registry.host}/bench/padded:latest"
        _run("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:{TAG}", f"docker://{ref}")
        manifest = json.loads(_run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"))
        size = sum(layer["size"] for layer in manifest["layers"])
        dest = runs / "dest"
        env = dict(os.environ, STOCKADE_CONFIG=str(runs / "empty.toml"))
        (runs / "empty.toml").write_text("")

        def fresh(_: str) -> None:
            if dest.exists():
                subprocess.run(["rm", "-rf", str(dest)], check=True)  # nosec B603 B607
            os.sync()

        bench = Benchmark("pull", f"pull {size / 2**20:.0f} MiB in {len(manifest['layers'])} layers "
                                  "(incompressible) from a loopback registry"
                                  + (", beside a writer fsyncing 64 MiB files" if IOLOAD else ""))
        cpu = ChildCPU()
        bench.case("stockade pull", cpu.measure("stockade pull", lambda: run_timed(
            stockade_argv("--root", str(dest), "pull", ref), env=env)))
        bench.case("skopeo copy", cpu.measure("skopeo copy", lambda: run_timed(
            ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{dest}:x"])))
        bench.case("podman pull", cpu.measure("podman pull", lambda: run_timed(
            ["podman", "--root", str(dest / "root"), "--runroot", str(dest / "run"), "--storage-driver",
             "overlay", "pull", "-q", "--tls-verify=false", ref])))
        bench.case("stockade blobs only", lambda: _blobs_only(ref, dest))
        if IOLOAD:
            with IOLoad(runs / "ioload"):
                stats = bench.run(rounds=ROUNDS, warmup=1, before_each=fresh)
        else:
            stats = bench.run(rounds=ROUNDS, warmup=1, before_each=fresh)
        fresh("")
        mib = size / 2**20
        floors = {"sha256_one_core_mib_s": round(_sha256_rate(), 1),
                  "write_fsync_mib_s": round(_write_rate(runs), 1)}
        throughput = {name: round(mib / st.median, 1) for name, st in stats.items()}
        print(f"  data: {mib:.1f} MiB compressed; throughput MiB/s: {throughput}")
        print(f"  CPU seconds (user + system, median): {cpu.medians()}")
        print(f"  floors: sha256 {floors['sha256_one_core_mib_s']} MiB/s per core, "
              f"write+fsync {floors['write_fsync_mib_s']} MiB/s")
        bench.report(stats, [("stockade pull", "skopeo copy"), ("stockade pull", "podman pull"),
                             ("stockade blobs only", "skopeo copy")], unit="s",
                     extra={"bytes": size, "layers": len(manifest["layers"]), "throughput_mib_s": throughput,
                            "cpu_seconds": cpu.medians(), "io_load": IOLOAD,
                            "load_average": os.getloadavg(), **floors, "cpus": os.cpu_count()})
    finally:
        registry.stop()
        shutil.rmtree(runs, ignore_errors=True)


if __name__ == "__main__":
    main()
