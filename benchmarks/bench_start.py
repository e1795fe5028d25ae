"""Start latency: ``stockade run --rm IMAGE /bin/true`` with the image and the seccomp filter cached,
against runc, crun, bubblewrap and podman on an equivalent busybox root, interleaved in one run.

Cases (whole-process wall time, the CLI's interpreter start included):

* ``stockade``: ``stockade --root W run --rm IMAGE /bin/true``: every namespace, overlayfs over the
  store's layer, the full hardening (Docker's capabilities, no_new_privs, masked paths, Docker's
  seccomp profile loaded from the compiled-filter cache), a cgroup, a container record created and
  removed. Bytecode caching on, as installed (this sandbox sets PYTHONDONTWRITEBYTECODE; the
  benchmark clears it so .pyc files are used, as they are outside the sandbox);
* ``runc-seccomp``: ``runc run`` on a bundle over the same root (read-only), Docker's 14
  capabilities and Docker's default profile expanded as Stockade expands it (so runc compiles it
  with libseccomp on every start: that is runc's cost); ``runc``: the same bundle without seccomp;
* ``crun-seccomp``: the same bundle with crun, only where crun runs (crun 1.8 refuses this host's
  hybrid cgroups; the error is recorded in the results instead);
* ``bwrap``: ``bwrap --unshare-all --ro-bind ROOT / --proc /proc --dev /dev /bin/true``;
* ``podman``: ``podman run --rm --runtime runc --network none`` with the ulimits this host needs
  (root lacks CAP_SYS_RESOURCE), on a throwaway ``--root``.

Targets: stockade / podman at most 0.5; toward crun-with-seccomp (~29 ms here) beyond that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 # peers run with argument lists
import sys
import tempfile
from pathlib import Path
from typing import Callable

from benchmarks.harness import Benchmark, run_timed
from tests.support.images import make_busybox_layout, populate_busybox_rootfs, skopeo_push
from tests.support.registry import start_registry

ROUNDS = int(os.environ.get("STOCKADE_BENCH_START_ROUNDS", "15"))
PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)  # nosec B603


def _stockade_env(work: Path) -> dict[str, str]:
    """The product's defaults (an empty configuration: the default policy, hardening and driver)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    (work / "config.toml").write_text("")
    env["STOCKADE_CONFIG"] = str(work / "config.toml")
    return env


def _bundle(work: Path, rootfs: Path, *, seccomp: bool) -> Path:
    """A runc bundle over ``rootfs``: ``runc spec`` plus Docker's capabilities and, optionally,
    Docker's default seccomp profile expanded for them (as Stockade expands it)."""
    from hardening.capabilities import DEFAULT
    from hardening.seccomp import expanded_profile

    bundle = work / ("bundle-seccomp" if seccomp else "bundle")
    bundle.mkdir()
    _run("runc", "spec", "--bundle", str(bundle))
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["process"]["capabilities"] = {k: list(DEFAULT) for k in ("bounding", "effective", "permitted")}
    spec["process"]["noNewPrivileges"] = True
    spec["root"] = {"path": str(rootfs), "readonly": True}
    if seccomp:
        spec["linux"]["seccomp"] = expanded_profile("default", list(DEFAULT))
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def next(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{os.getpid()}-{self.n}"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="stockade-bench-start-"))
    os.chmod(work, 0o711)
    registry = start_registry(work / "registry", "plain")
    notes: dict[str, object] = {}
    try:
        layout = make_busybox_layout(work / "image")
        image = f"{registry.host}/bench/busybox:latest"
        skopeo_push(layout, "busybox", image)
        rootfs = work / "rootfs"
        rootfs.mkdir()
        populate_busybox_rootfs(rootfs)
        store = work / "store"
        stockade = [sys.executable, "-m", "stockade", "--root", str(store)]
        env = _stockade_env(work)
        for step in (["pull", image], ["run", "--rm", image, "/bin/true"]):  # warm: image, .pyc, filter
            proc = subprocess.run(stockade + step, env=env, capture_output=True, text=True)  # nosec B603
            if proc.returncode:
                raise RuntimeError(f"stockade {' '.join(step)}: {proc.stderr}")
        ids = _Counter()
        runc_root = work / "runc-state"
        bundles = {s: _bundle(work, rootfs, seccomp=s) for s in (True, False)}
        podman = ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podman-run"),
                  "--storage-driver", "overlay"]
        pulled = _run(*podman, "pull", "--tls-verify=false", "-q", image)
        bench = Benchmark("start", "run --rm IMAGE /bin/true, cached, against peers (ms)")

        def case(name: str, argv_fn: Callable[[], list[str]], *, env_: dict[str, str] | None = None) -> None:
            bench.case(name, lambda: run_timed(argv_fn(), env=env_))

        case("stockade", lambda: [*stockade, "run", "--rm", image, "/bin/true"], env_=env)
        for seccomp in (True, False):
            name = "runc-seccomp" if seccomp else "runc"
            bundle = bundles[seccomp]
            case(name, lambda b=bundle: ["runc", "--root", str(runc_root), "run", "--bundle", str(b),
                                         ids.next("runc")])
        crun = _run("crun", "--root", str(work / "crun-state"), "run", "--bundle",
                    str(bundles[True]), ids.next("crun"))
        if crun.returncode == 0:
            case("crun-seccomp", lambda: ["crun", "--root", str(work / "crun-state"), "run", "--bundle",
                                          str(bundles[True]), ids.next("crun")])
        else:
            notes["crun"] = f"not measured: crun refuses this host: {crun.stderr.strip()[-300:]}"
        case("bwrap", lambda: ["bwrap", "--unshare-all", "--ro-bind", str(rootfs), "/", "--proc", "/proc",
                               "--dev", "/dev", "/bin/true"])
        if pulled.returncode == 0:
            case("podman", lambda: [*podman, "run", "--rm", "--runtime", "runc", "--network", "none",
                                    *PODMAN_ULIMITS, image, "/bin/true"])
        else:
            notes["podman"] = f"not measured: podman pull failed: {pulled.stderr.strip()[-300:]}"
        stats = bench.run(rounds=ROUNDS, warmup=2)
        bench.report(stats, [("stockade", "podman"), ("stockade", "runc-seccomp"),
                             ("stockade", "crun-seccomp"), ("stockade", "runc"), ("stockade", "bwrap")],
                     extra={**notes, "image": "busybox (1 layer, 1.1 MB)", "python": sys.executable,
                            "targets": "stockade/podman <= 0.5; toward crun with seccomp"})
    finally:
        registry.stop()
        podman_root = ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podman-run")]
        if (work / "podman").exists():
            _run(*podman_root, "rm", "-af")
            _run(*podman_root, "rmi", "-af")
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
