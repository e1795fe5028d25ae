"""``stockade-runtime`` against runc, driven the same way, interleaved in one run.

Cases (whole-process wall time; every runtime verb is a fresh process, as its callers run it):

* ``ctr-stockade`` / ``ctr-runc``: ``ctr run --rm --seccomp IMAGE ID /bin/true`` on one private
  containerd 1.6, through the runc shim, with ``--runc-binary stockade-runtime`` or runc itself: the
  start latency a Kubernetes node would see. ``--seccomp`` makes containerd write its default profile
  into the bundle, so both runtimes load the same filter (without it, the node policy would add one
  to ours and runc would run unfiltered);
* ``run-stockade`` / ``run-runc``: ``run --bundle B ID`` on one bundle (busybox root, read-only,
  Docker's 14 capabilities, Docker's default profile expanded as ``hardening`` expands it): create,
  start, wait and delete inside one runtime process;
* ``cycle-stockade`` / ``cycle-runc``: ``create``, ``start``, (the benchmark, a subreaper, waits for
  the init), ``delete``: three runtime processes, as conmon and the shim use it; the per-verb medians
  go to the notes;
* floors, to say what bounds a Python runtime: ``python -I -S -c pass`` (the bare interpreter),
  ``python -c pass`` (plus ``site`` and the editable install's import finder), ``stockade-runtime
  --version`` and ``state`` of a missing container (the entry point's own imports), against ``runc
  state``.

Bytecode is compiled beforehand and PYTHONDONTWRITEBYTECODE cleared for the runtime's environment
(as installed, where the .pyc files exist). The runtime's state roots are on /run (tmpfs), as in
production. The node policy is the built-in default (baseline, warn), its decision cached after the
first create, as is the compiled filter.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import statistics
import subprocess  # nosec B404 # runtimes and tools run with argument lists
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.harness import PYTHON, REPO, Benchmark, run_timed
from tests.oci_runtime.containerd import Containerd

RUNTIME = REPO / ".venv" / "bin" / "stockade-runtime"
POLICY = REPO / "stockade" / "oci_runtime" / "default-node-policy.yaml"
ROUNDS = int(os.environ.get("STOCKADE_BENCH_OCI_ROUNDS", "11"))
CGROUP_PARENT = "stockade-bench"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "STOCKADE_RUNTIME_POLICY")}


def _bundle(work: Path) -> Path:
    from hardening.capabilities import DEFAULT
    from hardening.seccomp import expanded_profile
    from tests.support.images import populate_busybox_rootfs

    bundle = work / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    populate_busybox_rootfs(bundle / "rootfs")
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True, capture_output=True)  # nosec B603 B607
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(terminal=False, args=["/bin/true"], noNewPrivileges=True,
                           capabilities={k: list(DEFAULT) for k in ("bounding", "effective", "permitted")})
    spec["linux"]["seccomp"] = expanded_profile("default", list(DEFAULT))
    spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/bundle"
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


class _Runtimes:
    """The two runtimes' command lines over the same bundle, each with its own state root on /run."""

    def __init__(self, bundle: Path, run_root: Path) -> None:
        self.bundle = bundle
        self.argv = {"stockade": [str(RUNTIME), "--root", str(run_root / "stockade"), "--node-policy", str(POLICY)],
                     "runc": ["runc", "--root", str(run_root / "runc")]}
        self.verbs: dict[str, dict[str, list[float]]] = {n: {"create": [], "start": [], "delete": []}
                                                         for n in self.argv}
        self.env = _env()

    def _config(self, cid: str) -> None:
        spec = json.loads((self.bundle / "config.json").read_text())
        spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid}"
        (self.bundle / "config.json").write_text(json.dumps(spec))

    def run(self, name: str) -> float:
        cid = f"b{uuid.uuid4().hex[:10]}"
        self._config(cid)
        return run_timed([*self.argv[name], "run", "--bundle", str(self.bundle), cid], env=self.env)

    def cycle(self, name: str) -> float:
        """create, start, wait for the init (we are its subreaper), delete."""
        cid = f"b{uuid.uuid4().hex[:10]}"
        self._config(cid)
        pid_file = self.bundle.parent / f"{cid}.pid"
        timings = self.verbs[name]
        began = time.perf_counter()
        # The init keeps create's stdio: nothing may wait for it to close (run_timed reads stderr).
        created = time.perf_counter()
        proc = subprocess.run([*self.argv[name], "create", "--bundle", str(self.bundle),  # nosec B603
                               "--pid-file", str(pid_file), cid], env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        timings["create"].append(time.perf_counter() - created)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} create failed ({proc.returncode})")
        pid = int(pid_file.read_text())
        timings["start"].append(run_timed([*self.argv[name], "start", cid], env=self.env))
        os.waitpid(pid, 0)
        timings["delete"].append(run_timed([*self.argv[name], "delete", cid], env=self.env))
        pid_file.unlink()
        return time.perf_counter() - began


def _containerd(work: Path) -> Containerd:
    from tests.support.images import make_busybox_layout

    daemon = Containerd(work / "containerd", f"stockade-bench-{uuid.uuid4().hex[:6]}")
    daemon.start()
    daemon.import_image(make_busybox_layout(work / "image"))
    return daemon


def _ctr(daemon: Containerd, runtime: bool) -> float:
    began = time.perf_counter()
    proc = daemon.run(f"b{uuid.uuid4().hex[:10]}", "/bin/true", runtime=runtime, extra=("--seccomp",))
    elapsed = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"ctr run ({'stockade-runtime' if runtime else 'runc'}) failed: {proc.stderr[-500:]}")
    return elapsed


def main() -> None:
    if os.geteuid() != 0:
        print("bench_oci_runtime: needs root (namespaces, containerd)", file=sys.stderr)
        return
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(REPO / "engine"), str(REPO / "stockade"),  # nosec B603
                    str(REPO / "hardening"), str(REPO / "policies")], check=True)
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the cycle cases wait for the inits
    work = Path(tempfile.mkdtemp(prefix="bench-oci-"))
    run_root = Path(tempfile.mkdtemp(prefix="bench-oci-", dir="/run"))
    daemon: Containerd | None = None
    try:
        runtimes = _Runtimes(_bundle(work), run_root)
        daemon = _containerd(work)
        env = _env()
        bench = Benchmark("oci_runtime", "stockade-runtime vs runc: under ctr run, run, create+start+delete")
        bench.case("ctr-stockade", lambda: _ctr(daemon, True))
        bench.case("ctr-runc", lambda: _ctr(daemon, False))
        bench.case("run-stockade", lambda: runtimes.run("stockade"))
        bench.case("run-runc", lambda: runtimes.run("runc"))
        bench.case("cycle-stockade", lambda: runtimes.cycle("stockade"))
        bench.case("cycle-runc", lambda: runtimes.cycle("runc"))
        bench.case("floor-python-I-S", lambda: run_timed([PYTHON, "-I", "-S", "-c", "pass"], env=env))
        bench.case("floor-python-site", lambda: run_timed([PYTHON, "-c", "pass"], env=env))
        bench.case("floor-version", lambda: run_timed([str(RUNTIME), "--version"], env=env))
        bench.case("floor-state-missing", lambda: run_timed([*runtimes.argv["stockade"], "state", "nosuch"],
                                                            env=env, check=False))
        bench.case("floor-runc-state-missing", lambda: run_timed([*runtimes.argv["runc"], "state", "nosuch"],
                                                                 env=env, check=False))
        stats = bench.run(rounds=ROUNDS, warmup=1)
        verbs = {name: {verb: round(statistics.median(v) * 1e3, 2) for verb, v in timings.items() if v}
                 for name, timings in runtimes.verbs.items()}
        print(f"  per-verb medians (ms): {verbs}")
        bench.report(stats, [("ctr-stockade", "ctr-runc"), ("run-stockade", "run-runc"),
                             ("cycle-stockade", "cycle-runc"), ("floor-state-missing", "floor-runc-state-missing")],
                     extra={"per_verb_ms": verbs, "rounds": ROUNDS,
                            "load_average": os.getloadavg(),
                            "bundle": "busybox, read-only root, Docker's 14 capabilities and default seccomp profile"})
    finally:
        if daemon is not None:
            daemon.stop()
        for name in ("stockade", "runc"):
            root = run_root / name
            for entry in (root.iterdir() if root.exists() else []):
                if not entry.name.startswith("."):
                    argv = [str(RUNTIME)] if name == "stockade" else ["runc"]
                    subprocess.run([*argv, "--root", str(root), "delete", "--force", entry.name],  # nosec B603
                                   capture_output=True, check=False)
        for controller in ("memory", "pids", "cpu", "cpu,cpuacct", "cpuset", "devices", "freezer", "blkio",
                           "perf_event", "net_cls,net_prio", "hugetlb", "systemd"):
            parent = Path("/sys/fs/cgroup") / controller / CGROUP_PARENT
            if parent.is_dir():
                for child in parent.glob("*/"):
                    child.rmdir()
                parent.rmdir()
        shutil.rmtree(run_root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
