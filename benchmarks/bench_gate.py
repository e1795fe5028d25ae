"""The cost of the policy gate: a warm ``stockade run --rm`` of a signed, cached image under ``restricted``,
against the same run without the gate and against ``podman run``, interleaved in one run.

Set-up (once per run, in a throwaway directory): Debian's docker-registry on loopback, the busybox
test image pushed with skopeo, a key made by ``stockade key generate``, the image signed by
``stockade sign``, a policy from ``stockade policy new --profile restricted --key``; the image
pulled by Stockade and by podman (its own ``--root``), and every case run once (image, .pyc files,
seccomp filter, verification and admission caches warm).

Cases (whole-process wall time of ``… /bin/true``, interpreter start included):

* ``gated``: ``stockade run --rm --policy POLICY IMAGE``: the product path. The gate resolves the
  image's configuration, builds the request document and finds the allowed decision in the
  admission cache (hashing the policy's files to prove it still holds);
* ``ungated``: the same run with ``stockade.run.admit`` replaced by the pipeline's pre-gate
  behaviour (the flags' hardening, no policy, no verification) and the hardening the policy
  imposes given as flags (``--read-only --cap-drop ALL``, no_new_privs and the default seccomp
  profile are the engine's defaults), so the containers are alike and only the gate differs;
* ``gated-decided``: the gated run with the admission cache removed before every sample: the policy
  is loaded, the signature verified from trust's verification cache, the request hardened and
  evaluated: what every warm run would cost without the admission cache;
* ``privileged``: ``--policy privileged``, the policy that constrains nothing (what "no policy" means
  to a user);
* ``podman``: ``podman run --rm --runtime runc --network none`` with the ulimits this host needs.

Target: ``gated / ungated`` under 1.10. Recorded beside the times: what a warm gated run imports
(``-X importtime``), which must include none of sigstore, tuf, CEL, cryptography, PyYAML or the
policy loader.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 # stockade, skopeo and podman run with argument lists
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import Benchmark, run_timed
from tests.support.images import make_busybox_layout, skopeo_push
from tests.support.registry import start_registry

ROUNDS = int(os.environ.get("STOCKADE_BENCH_GATE_ROUNDS", "15"))
PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
HEAVY = ("sigstore", "tuf", "cel_expr_python", "cryptography", "yaml", "policies.loader", "policies.evaluation",
         "trust.verify", "engine.registry.client")
# The pipeline as it was before the gate: the flags' hardening, no policy and no verification.
UNGATED = """
import sys
from hardening.defaults import decide
from stockade import gate, run

def ungated(ctx, req, resolved):
    o = req.options
    return gate.Admitted(req, decide(ctx.config.containers, cap_add=o.cap_add, cap_drop=o.cap_drop,
                                     privileged=o.privileged, seccomp=req.seccomp,
                                     no_new_privileges=req.no_new_privileges), "none")

run.admit = ungated
from stockade.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False,  # nosec B603
                          stdin=subprocess.DEVNULL)


def _checked(argv: list[str], env: dict[str, str]) -> str:
    proc = _run(argv, env)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv[2:])}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def _warm_imports(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    """What one warm gated run imports: the heavy modules among them, and the count of ours."""
    proc = _run([argv[0], "-X", "importtime", *argv[1:]], env)
    modules = [line.rpartition("|")[2].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)
    ours = [m for m in modules if m.split(".")[0] in ("engine", "trust", "policies", "hardening", "stockade")]
    return {"heavy_modules": heavy, "stockade_modules": len(ours), "all_modules": len(modules),
            "policies_modules": sorted(m for m in ours if m.startswith("policies"))}


def main() -> None:
    base = Path(os.environ.get("STOCKADE_BENCH_WORK", "/var/tmp/stockade-bench"))
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gate-", dir=base))
    for d in (work, base):
        os.chmod(d, 0o711)  # the container's unprivileged user reaches the store below, as under /var/lib
    registry = start_registry(work / "registry", "plain")
    podman = ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podman-run"),
              "--storage-driver", "overlay"]
    notes: dict[str, object] = {}
    try:
        image = f"{registry.host}/bench/gate:1"
        skopeo_push(make_busybox_layout(work / "image"), "busybox", image)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # .pyc as installed
        env.update(PYTHONPATH=str(Path(__file__).resolve().parent.parent), STOCKADE_CONFIG=str(work / "config.toml"),
                   STOCKADE_PASSWORD="bench-only")
        (work / "config.toml").write_text("")
        store = work / "store"
        stockade = [sys.executable, "-m", "stockade", "--root", str(store)]
        _checked([*stockade, "key", "generate", "--output-key-prefix", str(work / "bench")], env)
        _checked([*stockade, "sign", "--key", str(work / "bench.key"), image], env)
        policy = work / "policy.yaml"
        policy.write_text(_checked([*stockade, "policy", "new", "--profile", "restricted", "--images",
                                    f"{registry.host}/bench/**", "--key", str(work / "bench.pub")], env))
        gated = [*stockade, "run", "--rm", "--policy", str(policy), image, "/bin/true"]
        ungated = [sys.executable, "-c", UNGATED, "--root", str(store), "run", "--rm", "--read-only",
                   "--cap-drop", "ALL", image, "/bin/true"]
        privileged = [*stockade, "run", "--rm", "--policy", "privileged", image, "/bin/true"]
        _checked([*stockade, "pull", image], env)
        _checked(gated, env)  # warm: .pyc files, seccomp filters, both caches
        decision = list((store / "cache" / "admission").iterdir())  # the gated run's entry, alone
        for argv in (ungated, privileged):
            _checked(argv, env)
        notes["warm_gated_run_imports"] = _warm_imports(gated, env)

        bench = Benchmark("gate", "warm run --rm of a signed image under restricted: the gate's cost (ms)")
        bench.case("gated", lambda: run_timed(gated, env=env))
        bench.case("ungated", lambda: run_timed(ungated, env=env))
        bench.case("gated-decided", lambda: run_timed(gated, env=env))
        bench.case("privileged", lambda: run_timed(privileged, env=env))
        pulled = _run([*podman, "pull", "--tls-verify=false", "-q", image])
        if pulled.returncode == 0:
            podman_run = [*podman, "run", "--rm", "--runtime", "runc", "--network", "none", *PODMAN_ULIMITS,
                          image, "/bin/true"]
            _run(podman_run)
            bench.case("podman", lambda: run_timed(podman_run))
        else:
            notes["podman"] = f"not measured: podman pull failed: {pulled.stderr.strip()[-300:]}"

        def before(name: str) -> None:
            if name == "gated-decided":
                for entry in decision:
                    entry.unlink(missing_ok=True)

        stats = bench.run(rounds=ROUNDS, warmup=2, before_each=before)
        bench.report(stats, [("gated", "ungated"), ("gated-decided", "ungated"), ("privileged", "ungated"),
                             ("gated", "podman"), ("ungated", "podman")],
                     extra={**notes, "image": "busybox (1 layer, 1.1 MB), signed (cosign legacy format, ECDSA P-256)",
                            "python": sys.executable, "target": "gated / ungated < 1.10"})
    finally:
        registry.stop()
        if (work / "podman").exists():
            _run([*podman, "rm", "-af"])
            _run([*podman, "rmi", "-af"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
