"""The gate's other faces: ``policy explain`` (what run would do), ``policy check`` of a manifest with a
signed image, the audit's IMG-009, and a command line whose start-up loads no heavy module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.engine.runtime.support import Engine, engine  # noqa: F401 - fixture
from tests.stockade.gated import KEY_ENV, Gated, gated, ok, tree  # noqa: F401 - fixture
from tests.support.cli import REPO, stockade

FORBIDDEN_AT_START = ("sigstore", "tuf", "cel_expr_python", "engine.registry", "engine.store")


def test_explain_shows_the_hardened_configuration_and_the_decision(engine: Engine, gated: Gated) -> None:
    image = gated.images["nouser"]
    proc = engine("policy", "explain", "--policy", gated.policy, image)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"image:       {image}" in out and f"digest:      {gated.digests['nouser']}" in out
    assert "signatures:  key " in out and "policy:      gated@1 (profile restricted:v2)" in out
    rows = {line.split("   ")[0].strip(): line for line in out.splitlines()}
    assert "65534:65534" in rows["user"] and "the image has no non-root USER" in rows["user"]
    assert "true" in rows["read-only root"] and "RuntimeDefault" in rows["seccomp"]
    assert rows["capabilities"].split()[1] == "none" and "dropping ALL" in rows["capabilities"]
    assert out.rstrip().endswith("allowed by policy gated@1")
    assert [p for p in tree(engine.root) if not p[0].startswith("cache")] == []  # nothing pulled or created


def test_explain_json_of_a_refused_request(engine: Engine, gated: Gated) -> None:
    proc = engine("policy", "explain", "--policy", gated.policy, "-o", "json", "-u", "0", "--cap-add", "NET_ADMIN",
                  gated.images["unsigned"], "sh")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["policy"] == "gated@1" and doc["decision"]["decision"] == "deny"
    assert {v["rule"] for v in doc["decision"]["violations"]} == {"signatures", "runtime.runAsNonRoot",
                                                                   "runtime.capabilities.add"}
    assert doc["requested"]["user"] == {"uid": 0} and doc["effective"]["capabilities"]["drop"] == ["ALL"]
    assert doc["engine"]["capabilities"] == ["CAP_NET_ADMIN"] and doc["engine"]["seccomp"] == "default"
    assert {a["path"] for a in doc["applied"]} >= {"container.readOnlyRootFilesystem", "container.seccomp"}
    assert doc["image"]["digest"] == gated.digests["unsigned"] and doc["image"]["signatures"] == []
    assert not (engine.root / "containers").exists()


def test_explain_usage_errors_exit_2(engine: Engine, gated: Gated) -> None:
    proc = engine("policy", "explain", "--policy", "no-such-policy.yaml", gated.images["signed"])
    assert proc.returncode == 2 and "no-such-policy.yaml" in proc.stderr


def _pod(image: str) -> str:
    return textwrap.dedent(f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: app}}
        spec:
          securityContext: {{runAsNonRoot: true, runAsUser: 1000, seccompProfile: {{type: RuntimeDefault}}}}
          containers:
            - name: app
              image: {image}
              securityContext:
                allowPrivilegeEscalation: false
                readOnlyRootFilesystem: true
                capabilities: {{drop: [ALL]}}
        """)


def test_policy_check_verifies_the_signed_image_of_a_manifest(gated: Gated, tmp_path: Path) -> None:
    signed, unsigned = tmp_path / "signed.yaml", tmp_path / "unsigned.yaml"
    signed.write_text(_pod(gated.images["signed"]))
    unsigned.write_text(_pod(gated.images["unsigned"]))
    proc = stockade("policy", "check", "-f", signed, "--policy", gated.policy, "-o", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = stockade("policy", "check", "-f", signed, unsigned, "--policy", gated.policy, "-o", "json")
    assert proc.returncode == 1
    results = {r["source"]["file"]: r for r in json.loads(proc.stdout)["results"]}
    assert results[str(signed)]["decision"] == "allow"
    (violation,) = results[str(unsigned)]["violations"]
    assert violation["rule"] == "signatures" and violation["path"] == "image.signatures"


def test_audit_img009_passes_a_signed_image_and_fails_an_unsigned_one(engine: Engine, gated: Gated) -> None:
    for name in ("signed", "unsigned"):
        ok(engine("pull", gated.images[name]))
    proc = engine("audit", "images", "--check", "IMG-009", "--policy", gated.policy, "-o", "json", "--fail-on", "none")
    assert proc.returncode == 0, proc.stderr
    status = {r["target"]["name"]: (r["status"], r["message"]) for r in json.loads(proc.stdout)["results"]}
    assert status[gated.images["signed"]][0] == "PASS" and "signed by key" in status[gated.images["signed"]][1]
    assert status[gated.images["unsigned"]][0] == "FAIL" and "no signature" in status[gated.images["unsigned"]][1]
    # A policy that requires no signature leaves nothing to check against.
    proc = engine("audit", "images", "--check", "IMG-009", "--policy", "restricted", "-o", "json", "--fail-on", "none")
    assert {r["status"] for r in json.loads(proc.stdout)["results"]} == {"SKIP"}


def test_an_index_signed_image_passes_run_and_img009_alike(engine: Engine, gated: Gated,
                                                          tmp_path: Path) -> None:
    """A signer signs what a tag names: for a multi-platform image, the index. ``run`` and the audit
    must both judge the index's signature, not the platform manifest the store holds."""
    from engine.config import Paths, load_config
    from engine.reference import Reference
    from engine.registry import RegistryClient
    from engine.registry import mediatypes as mt

    source = Reference.parse(gated.images["unsigned"])
    client = RegistryClient(load_config(), Paths.default(root=tmp_path / "client"))
    try:
        found = client.get_manifest(source)
        index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
            {"mediaType": found.media_type, "digest": gated.digests["unsigned"], "size": len(found.raw),
             "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
        multi = f"{gated.registry.host}/gated/unsigned:multi"
        index_digest = client.put_manifest(Reference.parse(multi), index, mt.OCI_INDEX)
    finally:
        client.close()
    signed = json.loads(ok(stockade("sign", "--key", gated.keys / "trusted.key", multi, "-o", "json",
                                    env=KEY_ENV)))
    assert signed["digest"] == index_digest
    for _ in ("cold: run pulls it", "warm: from the store"):
        proc = engine("run", "--rm", "--policy", gated.policy, multi, "id", "-u")
        assert proc.returncode == 0 and proc.stdout == "1000\n", proc.stderr
    # The same manifest under its own tag, which nobody signed, is still refused.
    ok(engine("pull", gated.images["unsigned"]))
    proc = engine("run", "--rm", "--policy", gated.policy, gated.images["unsigned"], "id", "-u")
    assert proc.returncode == 122 and "no signature" in proc.stderr, proc.stderr
    proc = engine("audit", "images", "--image", multi, "--check", "IMG-009", "--policy", gated.policy,
                  "-o", "json", "--fail-on", "none")
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)["results"]
    assert result["status"] == "PASS", result["message"]


@pytest.mark.parametrize("argv", [["version"], ["run", "--rm", "--policy", "restricted", "-u", "1000",
                                                "--security-opt", "no-new-privileges", "busybox", "true"]])
def test_start_up_loads_no_heavy_module(argv: list[str]) -> None:
    """``stockade version`` and the parsing of a ``run`` command line (every verb registered, the run
    request built) import none of sigstore, tuf, CEL, the registry client or the store."""
    code = textwrap.dedent(f"""
        import json, sys
        from stockade.cli import build_parser, main
        from stockade.commands.containers import run_request
        argv = {argv!r}
        if argv[0] == "run":
            run_request(build_parser().parse_args(argv))
        else:
            main(argv)
        print(json.dumps(sorted(sys.modules)))
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout.splitlines()[-1])
    loaded = [m for m in modules if m.split(".")[0] in FORBIDDEN_AT_START or m.startswith(FORBIDDEN_AT_START)]
    assert loaded == []
