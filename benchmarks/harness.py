"""Shared timing harness: interleaved rounds, medians, ratios against a peer, JSON results.

Cases are interleaved (A, B, C, A, B, C, …) rather than run in blocks, so a noisy neighbour or a
thermal change on this shared machine hits every case alike and the ratios stay meaningful. Each
sample is wall time of one call; the first ``warmup`` rounds are discarded.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess  # nosec B404 # benchmarks run peer tools with argument lists
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

RESULTS_DIR = Path(os.environ.get("STOCKADE_BENCH_RESULTS", Path(__file__).parent / "results"))
# The interpreter running the benchmarks (the venv's): never a `python3` looked up on PATH, where a
# pyenv shim adds ~100 ms to every start. Not realpath()'d: the venv's bin/python symlink is what
# makes the interpreter find the venv's packages.
PYTHON = sys.executable
REPO = Path(__file__).resolve().parent.parent


def stockade_argv(*args: str) -> list[str]:
    """How benchmarks invoke Stockade: the real interpreter, no shim, isolated from user site."""
    return [PYTHON, "-m", "stockade", *args]


def run_timed(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              check: bool = True, cwd: str | Path | None = None) -> float:
    """Run a command to completion; return its wall time in seconds (output discarded)."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,  # nosec B603
                          env=dict(env) if env is not None else None, cwd=cwd)
    elapsed = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


@dataclass
class Stats:
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict[str, float | int]:
        s = sorted(self.samples)
        return {"n": len(s), "median": self.median, "min": s[0], "max": s[-1],
                "p90": s[min(len(s) - 1, int(0.9 * len(s)))]}


@dataclass
class Benchmark:
    """One benchmark: named cases timed in interleaved rounds, and the ratios to report."""

    name: str
    description: str
    cases: dict[str, Callable[[], float]] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)

    def case(self, name: str, fn: Callable[[], float]) -> None:
        """Add a case; ``fn`` performs one sample and returns its duration in seconds."""
        self.cases[name] = fn

    def run(self, rounds: int = 7, warmup: int = 1,
            before_each: Callable[[str], None] | None = None) -> dict[str, Stats]:
        samples: dict[str, list[float]] = {n: [] for n in self.cases}
        for r in range(warmup + rounds):
            for name, fn in self.cases.items():
                if before_each:
                    before_each(name)
                t = fn()
                if r >= warmup:
                    samples[name].append(t)
        return {n: Stats(s) for n, s in samples.items()}

    def report(self, stats: Mapping[str, Stats], ratios: Sequence[tuple[str, str]],
               unit: str = "ms", extra: Mapping[str, object] | None = None) -> dict[str, object]:
        """Print medians and ``ours / peer`` ratios; write ``results/<name>.json``; return the dict."""
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
        print(f"\n== {self.name}: {self.description}")
        width = max(len(n) for n in stats)
        for name, st in stats.items():
            d = st.as_dict()
            print(f"  {name.ljust(width)}  median {d['median'] * scale:9.2f} {unit}"
                  f"  (min {d['min'] * scale:.2f}, max {d['max'] * scale:.2f}, n={d['n']})")
        ratio_out = {}
        for ours, peer in ratios:
            if ours in stats and peer in stats and stats[peer].median > 0:
                value = stats[ours].median / stats[peer].median
                ratio_out[f"{ours} / {peer}"] = value
                print(f"  ratio {ours} / {peer}: {value:.2f}x")
        result: dict[str, object] = {
            "benchmark": self.name,
            "description": self.description,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                     "python": platform.python_version()},
            "unit": "seconds",
            "cases": {n: st.as_dict() for n, st in stats.items()},
            "ratios": ratio_out,
            "notes": {**self.notes, **(extra or {})},
        }
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"{self.name}.json"
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, out)
        print(f"  results: {out}")
        return result
