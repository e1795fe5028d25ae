"""Adversarial tests of the policy gate: requests that tried to get past it, each by making the engine
do something other than what the gate judged (a mount it never saw, a path it resolved differently,
a user ``exec`` could change afterwards). Real registry images, real containers."""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path

import pytest

from tests.engine.runtime.support import Engine, engine  # noqa: F401 - fixture
from tests.stockade.gated import Gated, gated  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")

EXIT_DENIED = 122


def _host_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "marker").write_text(name)
    return path


def _policy(tmp_path: Path, name: str, spec: str) -> Path:
    """A policy file ``name`` on restricted, with ``spec`` (YAML under ``spec:``, after the profile)."""
    policy = tmp_path / f"{name}.yaml"
    policy.write_text(f"apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {{name: {name}, revision: 1}}\n"
                      f"spec:\n  profile: restricted:v1\n" + textwrap.indent(textwrap.dedent(spec), "  "))
    return policy


def _bind_policy(tmp_path: Path, prefix: Path) -> Path:
    """restricted, plus read-only binds under ``prefix`` and --volumes-from opted in."""
    return _policy(tmp_path, "binds", f"""\
        runtime:
          mounts:
            bind: [{{sourcePrefix: "{prefix}", readOnly: true}}]
            volumes: [local, volumes-from]
        """)


def test_volumes_from_cannot_bring_in_a_host_path_the_policy_forbids(engine: Engine, gated: Gated,
                                                                     tmp_path: Path) -> None:
    """baseline forbids host paths; another container created under a looser policy has one. Its
    bind is judged as a bind when taken with --volumes-from (it was judged as a volume and mounted)."""
    host = _host_dir(tmp_path, "host")
    image = gated.images["signed"]
    engine.ok("create", "--name", "donor", "--policy", "privileged", "-v", f"{host}:/host", image, "true")
    proc = engine("run", "--rm", "--policy", "baseline", "--volumes-from", "donor", image, "cat", "/host/marker")
    assert proc.returncode == EXIT_DENIED, proc.stdout + proc.stderr
    assert "[runtime.mounts] bind mount of a host path the policy does not allow" in proc.stderr
    assert f"found {host}," in proc.stderr and proc.stdout == ""


def test_volumes_from_rw_cannot_make_a_read_only_bind_writable(engine: Engine, gated: Gated,
                                                               tmp_path: Path) -> None:
    data = _host_dir(tmp_path, "data")
    policy = _bind_policy(tmp_path, data)
    image = gated.images["signed"]
    engine.ok("create", "--name", "reader", "--policy", policy, "-v", f"{data}:/data:ro", image, "true")
    proc = engine("run", "--rm", "--policy", policy, "--volumes-from", "reader:rw", image, "true")
    assert proc.returncode == EXIT_DENIED, proc.stderr
    assert "[runtime.mounts] bind mount must be read-only" in proc.stderr
    out = engine.ok("run", "--rm", "--policy", policy, "--volumes-from", "reader", image, "sh", "-c",
                    "cat /data/marker; echo; touch /data/x 2>/dev/null && echo writable || echo read-only")
    assert out.split() == ["data", "read-only"]


def test_the_engine_binds_the_path_the_gate_judged_not_a_symlink(engine: Engine, gated: Gated,
                                                                 tmp_path: Path) -> None:
    """A bind source given through a symlink is judged at its target; the container must bind that
    target, not the link, which its owner could repoint at / once the gate has decided."""
    data = _host_dir(tmp_path, "data")
    link = tmp_path / "link"
    link.symlink_to(data)
    policy = _bind_policy(tmp_path, data)
    cid = engine.ok("create", "--policy", policy, "-v", f"{link}:/data:ro", gated.images["signed"],
                    "true").strip()
    mounts = engine.inspect(cid)["Mounts"]
    assert [(m["Source"], m["Destination"], m["RW"]) for m in mounts] == [(str(data), "/data", False)]


def test_exec_cannot_become_root_in_a_container_given_the_policys_fallback_user(engine: Engine,
                                                                               gated: Gated) -> None:
    """An image without USER runs as 65534 under restricted: ``exec -u 0`` must be refused there
    too, not only where the image's own USER was non-root."""
    engine.ok("run", "-d", "--name", "fallback", "--policy", "restricted", gated.images["nouser"], "sleep", "60")
    try:
        assert engine.ok("exec", "fallback", "id", "-u").strip() == "65534"
        proc = engine("exec", "-u", "0", "fallback", "id", "-u")
        assert proc.returncode == 125 and proc.stdout == ""
        assert "runAsNonRoot" in proc.stderr
    finally:
        engine("rm", "-f", "fallback")


def test_a_pinned_seccomp_profile_replaced_on_disk_is_refused(engine: Engine, gated: Gated, tmp_path: Path) -> None:
    """The policy lists a profile by path and sha256 and fills it in when the user names none. The
    file at that path is what gets compiled: replaced by an allow-all profile (after a first run's
    decision was cached, or before any), the run is refused, not confined by the replacement."""
    from hardening.seccomp.profile import DEFAULT_PROFILE

    profile = tmp_path / "profile.json"
    profile.write_bytes(DEFAULT_PROFILE.read_bytes())
    digest = hashlib.sha256(profile.read_bytes()).hexdigest()
    policy = _policy(tmp_path, "pinned", f"""\
        runtime:
          seccomp:
            allowed: [Localhost]
            profiles: [{{path: "{profile}", sha256: "{digest}"}}]
        """)
    image = gated.images["signed"]
    probe = "unshare -U true 2>/dev/null && echo unconfined || echo confined"
    assert engine.ok("run", "--rm", "--policy", policy, image, "sh", "-c", probe).split() == ["confined"]
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    for _ in range(2):  # the cached decision, then (the policy edited) a fresh one
        proc = engine("run", "--rm", "--policy", policy, image, "sh", "-c", probe)
        assert proc.returncode == EXIT_DENIED and proc.stdout == "", proc.stdout + proc.stderr
        assert f"the seccomp profile {profile} is not the one the decision was about" in proc.stderr
        assert f"expected {digest}" in proc.stderr
        policy.write_text(policy.read_text() + "  # edited\n")


def test_a_rule_on_what_runs_sees_an_entrypoint_override(engine: Engine, gated: Gated, tmp_path: Path) -> None:
    """A custom rule that lets only the image's own command run: --entrypoint replaces the program
    as much as a command does, so the rule must see it (context.entrypoint)."""
    policy = _policy(tmp_path, "own-command", """\
        rules:
          - id: image-command-only
            expression: "size(context.command) == 0 && !has(context.entrypoint)"
            message: only the image's own command may run
        """)
    image = gated.images["signed"]
    engine.ok("create", "--policy", policy, image)
    proc = engine("create", "--policy", policy, "--entrypoint", "/bin/cat", image)
    assert proc.returncode == EXIT_DENIED and "[image-command-only]" in proc.stderr, proc.stderr
    assert len(engine.ok("ps", "-aq").split()) == 1
