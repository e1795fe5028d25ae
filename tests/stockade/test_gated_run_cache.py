"""The gate's caches: a warm run of an admitted image needs neither the registry nor the policy engine.

A registry of the test's own is stopped after the first run, so the second run can only succeed
from the caches; ``-X importtime`` shows what each run loaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.runtime.support import Engine, engine  # noqa: F401 - fixture
from tests.stockade.gated import KEY_ENV, Gated, gated, ok  # noqa: F401 - fixture
from tests.support.cli import REPO
from tests.support.registry import start_registry

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")

HEAVY = ("sigstore", "tuf", "cel_expr_python", "cryptography", "yaml", "policies.loader", "trust.verify",
         "engine.registry.client")


def imported(engine: Engine, *args: object) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI with ``-X importtime``; the modules it imported, from its own report."""
    argv = [sys.executable, "-X", "importtime", "-m", "stockade", "--root", str(engine.root), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL)
    modules = {line.rpartition("|")[2].strip() for line in proc.stderr.splitlines()
               if line.startswith("import time:")}
    return proc, modules


def test_a_warm_run_is_answered_by_the_caches(engine: Engine, gated: Gated, tmp_path: Path) -> None:
    own = start_registry(tmp_path / "registry", "plain")
    try:
        image = f"{own.host}/gated/app:1"
        policy = tmp_path / "policy.yaml"
        policy.write_text(gated.policy.read_text().replace(gated.registry.host, own.host))
        source = gated.images["signed"]
        ok(engine("pull", source))
        ok(engine("tag", source, image))
        ok(engine("push", image))
        ok(engine("sign", "--key", gated.keys / "trusted.key", image, env=KEY_ENV))

        first, loaded = imported(engine, "run", "--rm", "--policy", policy, image, "id", "-u")
        assert first.returncode == 0 and first.stdout == "1000\n", first.stderr[-2000:]
        assert "trust.verify" in loaded and "policies.loader" in loaded  # decided: verified and evaluated
        assert not {"sigstore", "tuf"} & loaded  # a keyed signature needs neither
        assert list((engine.root / "cache" / "verify").iterdir()) and list((engine.root / "cache" / "admission").iterdir())
    finally:
        own.stop()
    # The registry is gone: only the caches can admit the image now.
    warm, loaded = imported(engine, "run", "--rm", "--policy", policy, image, "id", "-u")
    assert warm.returncode == 0 and warm.stdout == "1000\n", warm.stderr[-2000:]
    assert not set(HEAVY) & loaded, sorted(set(HEAVY) & loaded)
    # Without the admission cache the policy is evaluated again, and the verification cache answers.
    shutil.rmtree(engine.root / "cache" / "admission")
    again, loaded = imported(engine, "run", "--rm", "--policy", policy, image, "id", "-u")
    assert again.returncode == 0 and again.stdout == "1000\n", again.stderr[-2000:]
    assert "policies.loader" in loaded and "trust.verify" in loaded
    assert not {"sigstore", "tuf", "engine.registry.client"} & loaded


def test_a_changed_policy_file_is_decided_afresh(engine: Engine, gated: Gated, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(gated.policy.read_text())
    image = gated.images["signed"]
    assert engine.ok("run", "--rm", "--policy", policy, image, "id", "-u") == "1000\n"
    policy.write_text(gated.policy.read_text().replace("profile: restricted", "profile: restricted\n"
                                                        "  runtime:\n    minimumUid: 5000"))
    # uid 1000 is now below the minimum: the policy runs the image as 65534 instead.
    assert engine.ok("run", "--rm", "--policy", policy, image, "id", "-u") == "65534\n"
    proc = engine("run", "--rm", "--policy", policy, "-u", "1000", image, "id", "-u")
    assert proc.returncode == 122 and "[runtime.minimumUid]" in proc.stderr, proc.stderr


def test_a_replaced_key_file_revokes_cached_admissions(engine: Engine, gated: Gated, tmp_path: Path) -> None:
    """The policy names its key by path: putting another key in that file (a rotation, or a revocation)
    must refuse an image admitted a moment ago, although the policy file itself did not change."""
    key = tmp_path / "release.pub"
    shutil.copy(gated.key("trusted"), key)
    policy = tmp_path / "policy.yaml"
    policy.write_text(gated.policy.read_text().replace(str(gated.key("trusted")), str(key)))
    image = gated.images["signed"]
    assert engine.ok("run", "--rm", "--policy", policy, image, "true") == ""
    shutil.copy(gated.key("other"), key)
    proc = engine("run", "--rm", "--policy", policy, image, "true")
    assert proc.returncode == 122 and "[signatures]" in proc.stderr, proc.stderr


def test_an_unreadable_cache_entry_is_decided_afresh(engine: Engine, gated: Gated) -> None:
    image = gated.images["signed"]
    assert engine.ok("run", "--rm", "--policy", gated.policy, image, "id", "-u") == "1000\n"
    (entry,) = (engine.root / "cache" / "admission").iterdir()
    for garbage in (b"{not json", b'{"format": 1, "result": []}', entry.read_bytes().replace(b'"container"', b'"x"')):
        entry.write_bytes(garbage)
        assert engine.ok("run", "--rm", "--policy", gated.policy, image, "id", "-u") == "1000\n"
    proc = engine("run", "--rm", "--policy", gated.policy, "-u", "0", image, "id", "-u")
    assert proc.returncode == 122
