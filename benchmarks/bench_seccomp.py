"""The cost of the seccomp filter itself: a loop of raw syscalls under Stockade's compiled filter,
under runc with the same profile, and unconfined, interleaved.

The workload (``seccomp/loop.c``, built with ``gcc -O2 -static``) times N calls from inside the
container, so only the filter's cost per syscall is measured:

* ``getppid``: allowed unconditionally by Docker's profile, so the kernel's per-syscall action cache
  answers without running the filter (target: Stockade at most 1.05x unconfined);
* ``personality(0xffffffff)``: allowed only for five argument values, so every call runs the filter.
  runc compiles the profile with libseccomp's default (linear) dispatch: ~2.4x here; Stockade's
  binary-tree program should be well below that.

Cases per syscall: ``stockade`` (Docker's default profile, compiled and cached by Stockade),
``runc`` (the same profile, expanded the same way, compiled by runc), ``unconfined`` (Stockade with
``--security-opt seccomp=unconfined``: the same container, no filter).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 # gcc, runc and the CLI run with argument lists
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import Benchmark
from tests.support.images import populate_busybox_rootfs

SOURCE = Path(__file__).with_name("seccomp") / "loop.c"
CALLS = int(os.environ.get("STOCKADE_BENCH_SECCOMP_CALLS", "3000000"))
ROUNDS = int(os.environ.get("STOCKADE_BENCH_SECCOMP_ROUNDS", "7"))


def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Run the loop in a container; return the seconds it reports for its own loop."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)  # nosec B603
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr[-400:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from hardening.capabilities import DEFAULT
    from hardening.seccomp import expanded_profile

    work = Path(tempfile.mkdtemp(prefix="stockade-bench-seccomp-"))
    try:
        rootfs = work / "rootfs"
        rootfs.mkdir()
        populate_busybox_rootfs(rootfs)
        subprocess.run(["gcc", "-O2", "-static", "-o", str(rootfs / "bin/loop"), str(SOURCE)],  # nosec
                       check=True)
        bundle = work / "bundle"
        bundle.mkdir()
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)  # nosec B603 B607
        spec = json.loads((bundle / "config.json").read_text())
        spec["root"] = {"path": str(rootfs), "readonly": True}
        spec["process"]["terminal"] = False
        spec["process"]["noNewPrivileges"] = True
        spec["process"]["capabilities"] = {k: list(DEFAULT) for k in ("bounding", "effective", "permitted")}
        spec["linux"]["seccomp"] = expanded_profile("default", list(DEFAULT))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
        # This measures the filter, not admission: the privileged policy admits the unconfined case.
        config = work / "config.toml"
        config.write_text('[policy]\ndefault = "privileged"\n')
        env["STOCKADE_CONFIG"] = str(config)
        stockade = [sys.executable, "-m", "stockade", "--root", str(work / "store"), "run", "--rm",
                    "--rootfs", "--read-only"]
        bench = Benchmark("seccomp", f"{CALLS} raw syscalls in a container, timed inside (ns per call)")
        counter = iter(range(10**9))
        for call in ("getppid", "personality"):
            spec["process"]["args"] = ["/bin/loop", call, str(CALLS)]
            (bundle / f"{call}.json").write_text(json.dumps(spec))

            def runc(call: str = call) -> float:
                shutil.copy(bundle / f"{call}.json", bundle / "config.json")
                return _timed(["runc", "--root", str(work / "runc"), "run", "--bundle", str(bundle),
                               f"bench-{os.getpid()}-{next(counter)}"])

            bench.case(f"{call}/stockade",
                       lambda call=call: _timed([*stockade, str(rootfs), "/bin/loop", call, str(CALLS)], env))
            bench.case(f"{call}/runc", runc)
            bench.case(f"{call}/unconfined",
                       lambda call=call: _timed([*stockade, "--security-opt", "seccomp=unconfined",
                                                 str(rootfs), "/bin/loop", call, str(CALLS)], env))
        stats = bench.run(rounds=ROUNDS, warmup=1)
        per_call = {name: round(st.median / CALLS * 1e9, 1) for name, st in stats.items()}
        print("  ns per call:", ", ".join(f"{k} {v}" for k, v in per_call.items()))
        bench.report(stats, [(f"{c}/{who}", f"{c}/unconfined") for c in ("getppid", "personality")
                             for who in ("stockade", "runc")]
                     + [(f"{c}/stockade", f"{c}/runc") for c in ("getppid", "personality")],
                     extra={"ns_per_call": per_call, "calls": CALLS,
                            "targets": "getppid stockade/unconfined <= 1.05; personality well below "
                                       "runc's ~2.4x (binary tree)"})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
