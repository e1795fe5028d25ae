"""``stockade run`` behind the policy gate, end to end: a real registry, real keys and signatures, real
containers. What the policy allows runs with the hardening visible from inside; what it refuses is
refused with every reason, before anything is pulled, unpacked or created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.engine.runtime.support import Engine, engine  # noqa: F401 - fixture
from tests.stockade.gated import Gated, config_file, gated, ok, tree  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")

EXIT_DENIED = 122
PROBE = ("id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
         "touch /probe 2>/dev/null && echo root-writable || echo root-read-only")


def test_a_signed_image_runs_hardened_under_restricted(engine: Engine, gated: Gated) -> None:
    out = engine.ok("run", "--rm", "--policy", gated.policy, gated.images["signed"], "sh", "-c", PROBE)
    lines = [line.split() for line in out.splitlines()]
    assert lines == [["1000"], ["CapEff:", "0000000000000000"], ["NoNewPrivs:", "1"], ["Seccomp:", "2"],
                     ["root-read-only"]]


def test_an_image_without_user_runs_as_65534(engine: Engine, gated: Gated) -> None:
    out = engine.ok("run", "--rm", "--policy", gated.policy, gated.images["nouser"], "sh", "-c", PROBE)
    assert out.split()[0] == "65534" and "root-read-only" in out


def test_the_configured_default_policy_applies(engine: Engine, gated: Gated, tmp_path: Path) -> None:
    """An empty configuration means restricted; ``[policy] default`` names another."""
    empty = config_file(tmp_path, "")
    proc = engine("run", "--rm", "-u", "0", gated.images["unsigned"], "true", env=empty)
    assert proc.returncode == EXIT_DENIED and "denied by policy restricted@2" in proc.stderr
    assert "[runtime.runAsNonRoot]" in proc.stderr
    named = config_file(tmp_path, f'[policy]\ndefault = "{gated.policy}"\n')
    proc = engine("run", "--rm", gated.images["unsigned"], "true", env=named)
    assert proc.returncode == EXIT_DENIED and "denied by policy gated@1" in proc.stderr


def test_an_unsigned_image_is_refused_and_nothing_is_written(engine: Engine, gated: Gated) -> None:
    before = tree(engine.root)
    proc = engine("run", "--rm", "--policy", gated.policy, gated.images["unsigned"], "true")
    assert proc.returncode == EXIT_DENIED, proc.stderr
    assert proc.stderr.startswith("stockade: error: denied by policy gated@1: 1 violation(s)")
    assert "[signatures] no signature (" in proc.stderr
    assert "fix: sign" in proc.stderr and "expected" in proc.stderr
    assert tree(engine.root) == before


@pytest.mark.parametrize(("flags", "rule"), [
    (["--privileged"], "runtime.privileged"),
    (["--cap-add", "SYS_ADMIN"], "runtime.capabilities.add"),
    (["-u", "0"], "runtime.runAsNonRoot"),
    (["--security-opt", "seccomp=unconfined"], "runtime.seccomp"),
    (["-v", "/:/host"], "runtime.mounts"),
])
def test_each_forbidden_flag_is_refused_and_nothing_is_written(engine: Engine, gated: Gated, flags: list[str],
                                                               rule: str) -> None:
    image = gated.images["signed"]
    ok(engine("pull", image))
    before = tree(engine.root)
    proc = engine("run", "--rm", "--policy", gated.policy, *flags, image, "true")
    assert proc.returncode == EXIT_DENIED, proc.stderr
    assert f"[{rule}]" in proc.stderr and "; fix: " in proc.stderr and "found" in proc.stderr
    assert "[signatures]" not in proc.stderr  # the image itself is fine
    after = tree(engine.root)
    assert [p for p in after if p not in before and not p[0].startswith("cache")] == []
    assert not (engine.root / "containers").exists() or not any((engine.root / "containers").iterdir())


def test_every_reason_is_listed_at_once(engine: Engine, gated: Gated) -> None:
    proc = engine("create", "--policy", gated.policy, "--privileged", "--cap-add", "SYS_ADMIN", "-u", "0",
                  "--security-opt", "seccomp=unconfined", "-v", "/:/host", gated.images["unsigned"], "true")
    assert proc.returncode == EXIT_DENIED, proc.stderr
    rules = {line.split("]")[0].strip(" [") for line in proc.stderr.splitlines()[1:]}
    assert rules >= {"signatures", "runtime.privileged", "runtime.capabilities.add", "runtime.runAsNonRoot",
                     "runtime.seccomp", "runtime.mounts"}
    assert all("; fix: " in line for line in proc.stderr.splitlines()[1:])
    assert not (engine.root / "containers").exists()


def test_an_image_signed_by_another_key_is_refused(engine: Engine, gated: Gated) -> None:
    proc = engine("run", "--rm", "--policy", gated.policy, gated.images["othersigned"], "true")
    assert proc.returncode == EXIT_DENIED, proc.stderr
    assert "[signatures] no signature" in proc.stderr
    assert "does not verify with the given key" in proc.stderr  # the invalid signature's reason
    assert not (engine.root / "containers").exists()


def test_the_privileged_policy_lets_an_unsigned_image_run(engine: Engine, gated: Gated) -> None:
    out = engine.ok("run", "--rm", "--policy", "privileged", "-u", "0", gated.images["unsigned"], "sh", "-c",
                    "id -u; touch /probe && echo root-writable")
    assert out.split() == ["0", "root-writable"]


def test_a_user_name_resolving_to_root_is_refused_at_start(engine: Engine, gated: Gated) -> None:
    """``USER root`` cannot be judged before the image's /etc/passwd is read: the policy admits it
    with runAsNonRoot, and the runtime refuses to start it as uid 0."""
    proc = engine("run", "--rm", "--policy", gated.policy, gated.images["rootname"], "id")
    assert proc.returncode == 125, proc.stderr
    assert "uid 0 in this image" in proc.stderr and "runAsNonRoot" in proc.stderr
    assert proc.stdout == ""
    out = engine.ok("run", "--rm", "--policy", gated.policy, "-u", "1000", gated.images["rootname"], "id", "-u")
    assert out.strip() == "1000"


def test_exec_cannot_become_root_in_a_container_the_policy_admitted_as_non_root(engine: Engine,
                                                                                gated: Gated) -> None:
    """exec inherits the admitted container's confinement, runAsNonRoot included: ``exec -u 0``
    must not undo what the gate decided at ``run``."""
    engine.ok("run", "-d", "--name", "admitted", "--policy", gated.policy, gated.images["signed"], "sleep", "60")
    try:
        assert engine.ok("exec", "admitted", "id", "-u").strip() == "1000"
        proc = engine("exec", "-u", "0", "admitted", "id", "-u")
        assert proc.returncode != 0 and proc.stdout == ""
        assert "runAsNonRoot" in proc.stderr
    finally:
        engine("rm", "-f", "admitted")


def test_signature_verification_turned_off_fails_closed(engine: Engine, gated: Gated, tmp_path: Path) -> None:
    env = config_file(tmp_path, "[policy]\nverify_signatures = false\n")
    proc = engine("run", "--rm", "--policy", gated.policy, gated.images["signed"], "true", env=env)
    assert proc.returncode == EXIT_DENIED and "signature verification is turned off" in proc.stderr


def test_a_rootfs_directory_has_no_provenance(engine: Engine, gated: Gated, tmp_path: Path) -> None:
    from tests.support.images import populate_busybox_rootfs

    rootfs = tmp_path / "rootfs"
    populate_busybox_rootfs(rootfs)
    proc = engine("run", "--rm", "--policy", gated.policy, "--rootfs", rootfs, "true")
    assert proc.returncode == EXIT_DENIED and "has no name or provenance" in proc.stderr
    out = engine.ok("run", "--rm", "--policy", "restricted", "--rootfs", rootfs, "sh", "-c", PROBE)
    assert out.split()[0] == "65534" and "root-read-only" in out
