"""``make demo`` keeps working: the script runs end to end and checks every step itself."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.cli import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the demo starts real containers as root")


def test_the_demo_runs_end_to_end_and_leaves_nothing_behind() -> None:
    before = set(os.listdir("/tmp"))
    proc = subprocess.run([str(REPO / "scripts" / "demo.sh")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable}, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for shown in ("uid: 1000", "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2", "/ is read-only",
                  "[signatures] no signature", "[runtime.privileged]", "every step behaved as expected"):
        assert shown in out, shown
    assert out.count("-> refused as expected (exit 122)") == 2
    assert not [n for n in set(os.listdir("/tmp")) - before if n.startswith("stockade-demo.")]
