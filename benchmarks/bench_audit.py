"""``stockade audit all`` against Lynis (and docker-bench-security where it can run), same run.

Each case is one full audit of this machine, timed as a user would see it (process start to exit).
The number of checks each tool performs is recorded beside its time: a faster tool that checks less
is not faster. Target for Stockade: the full audit in under 2 seconds.

docker-bench-security is not packaged for Debian and needs a Docker daemon (its checks call
``docker info`` / ``docker inspect``); it is timed only when ``DOCKER_BENCH_DIR`` names a checkout
of it and ``docker info`` answers, and the reason is recorded otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess  # nosec B404 # peers run with argument lists
import tempfile
from pathlib import Path

from benchmarks.harness import Benchmark, run_timed, stockade_argv

ROUNDS = int(os.environ.get("STOCKADE_BENCH_AUDIT_ROUNDS", "3"))


def _stockade_checks(env: dict[str, str]) -> dict[str, object]:
    argv = stockade_argv("audit", "all", "-o", "json", "--fail-on", "none")
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)  # nosec B603
    doc = json.loads(out.stdout)
    return {"checks": doc["summary"]["checks"], "results": doc["summary"]["results"],
            "decided": doc["summary"]["status"]["PASS"] + doc["summary"]["status"]["FAIL"],
            "in_process_seconds": doc["duration_seconds"]}


def _lynis_tests(report_file: Path) -> int | None:
    text = report_file.read_text(errors="replace") if report_file.exists() else ""
    match = re.search(r"^lynis_tests_done=(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _docker_bench() -> tuple[list[str] | None, str]:
    """The docker-bench command line, or None and why it cannot run here."""
    checkout = os.environ.get("DOCKER_BENCH_DIR")
    if not checkout or not (Path(checkout) / "docker-bench-security.sh").is_file():
        return None, ("not run: docker-bench-security is not packaged for Debian; set "
                      "DOCKER_BENCH_DIR to a checkout to include it")
    docker = shutil.which("docker")
    if docker is None:
        return None, "not run: no docker CLI"
    probe = subprocess.run([docker, "info"], capture_output=True, timeout=20)  # nosec B603
    if probe.returncode != 0:
        return None, "not run: no Docker daemon answers `docker info` (docker-bench needs one)"
    return ["bash", str(Path(checkout) / "docker-bench-security.sh"), "-b"], ""


def main() -> None:
    env = dict(os.environ)
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    bench = Benchmark("audit", "full host audit: stockade audit all vs lynis audit system --quick")
    ours_argv = stockade_argv("audit", "all", "-o", "json", "--fail-on", "none")
    bench.case("stockade audit all", lambda: run_timed(ours_argv, env=env))
    lynis = shutil.which("lynis")
    lynis_report = work / "lynis-report.dat"
    if lynis:
        lynis_argv = [lynis, "audit", "system", "--quick", "--no-colors", "--quiet",
                      "--logfile", str(work / "lynis.log"), "--report-file", str(lynis_report)]
        bench.case("lynis audit system --quick", lambda: run_timed(lynis_argv, env=env, check=False))
    else:
        bench.notes["lynis"] = "not run: lynis is not installed"
    docker_bench, why = _docker_bench()
    if docker_bench:
        bench.case("docker-bench-security",
                   lambda: run_timed(docker_bench, env=env, check=False, cwd=work))
    else:
        bench.notes["docker-bench-security"] = why
    stats = bench.run(rounds=ROUNDS, warmup=0)
    checks = {"stockade audit all": _stockade_checks(env)}
    if lynis:
        checks["lynis audit system --quick"] = {"checks": _lynis_tests(lynis_report)}
    ours = stats["stockade audit all"].median
    bench.report(stats, [("stockade audit all", "lynis audit system --quick"),
                         ("stockade audit all", "docker-bench-security")], unit="ms",
                 extra={"checks": checks, "target_seconds": 2.0, "target_met": ours < 2.0})
    print(f"  checks performed: {json.dumps(checks)}")
    print(f"  stockade audit all median {ours:.3f}s (target < 2 s: {'met' if ours < 2.0 else 'MISSED'})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
