"""The Kubernetes-only settings Pod Security "baseline" judges (host ports, sysctls, AppArmor, SELinux,
procMount, Windows HostProcess): judged by ``baseline:v2`` and ``restricted:v2`` (what the bare names
and the default now mean), each denial pointing at the manifest field; ``restricted:v1`` unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest
import yaml

from policies import InputDocumentError, builtin_policy, evaluate, harden
from policies.kubernetes import documents_from_manifests
from policies.lint import lint
from policies.runline import document_from_run_args
from tests.policies.conftest import document, rules
from tests.policies.malformed import RICH_POD
from tests.policies.pod_security import ALLOWED, DENIED, Case
from tests.support.cli import REPO, stockade

V2_NAMES = ("restricted", "baseline", "restricted:v2", "baseline:v2")


def _located(case: Case) -> Any:
    (loc,), _ = documents_from_manifests(yaml.safe_dump(case.pod(), sort_keys=False), f"{case.name}.yaml")
    return loc


@pytest.mark.parametrize("case", DENIED, ids=lambda c: c.name)
def test_a_pod_pss_baseline_denies_is_denied_at_its_field(case: Case) -> None:
    loc = _located(case)
    for name in V2_NAMES:
        decision = evaluate(builtin_policy(name), loc.document)
        assert not decision.allowed and rules(decision) == {case.rule}, (name, decision.as_dict())
    finding = evaluate(builtin_policy("restricted"), loc.document).violations[0].finding
    line, where = loc.source.locate(finding.path)
    assert where == case.where and line is not None
    assert finding.found not in (None, "", False) and finding.expected and finding.fix
    assert evaluate(builtin_policy("restricted:v1"), loc.document).allowed  # a released version never changes


@pytest.mark.parametrize("case", ALLOWED, ids=lambda c: c.name)
def test_the_compliant_twin_is_allowed(case: Case) -> None:
    loc = _located(case)
    for name in (*V2_NAMES, "restricted:v1"):
        decision = evaluate(builtin_policy(name), loc.document)
        assert decision.allowed and not decision.warnings, (name, decision.as_dict())


def _write(path: Path, cases: tuple[Case, ...]) -> Path:
    path.write_text(yaml.safe_dump_all([c.pod() for c in cases], sort_keys=False))
    return path


def test_policy_check_denies_each_pod_and_allows_the_twins(tmp_path: Path) -> None:
    denied, allowed = _write(tmp_path / "denied.yaml", DENIED), _write(tmp_path / "allowed.yaml", ALLOWED)
    for policy in (("--policy", "restricted"), ("--policy", "baseline"), ("--policy", "restricted:v2")):
        out = stockade("policy", "check", "-f", denied, *policy, "-o", "json")
        assert out.returncode == 1, out.stderr
        report = json.loads(out.stdout)
        found = {r["source"]["object"].split("/")[2].split()[0]: {v["rule"] for v in r["violations"]}
                 for r in report["results"]}
        assert found == {c.name: {c.rule} for c in DENIED}, policy
        assert stockade("policy", "check", "-f", allowed, *policy).returncode == 0
    old = stockade("policy", "check", "-f", denied, "--policy", "restricted:v1", "-o", "json")
    assert old.returncode == 0 and json.loads(old.stdout)["profile"] == "restricted:v1"


def test_the_documents_match_the_published_schema() -> None:
    schema = json.loads((REPO / "policies" / "input-document.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    texts = [yaml.safe_dump(c.pod()) for c in DENIED + ALLOWED] + [yaml.safe_dump(RICH_POD)]
    for text in texts:
        for loc in documents_from_manifests(text, "pod.yaml")[0]:
            jsonschema.Draft202012Validator(schema).validate(loc.document)


def test_a_run_line_sets_none_of_them_and_passes() -> None:
    """`stockade run` has no such flags: its documents leave the fields out, and v2 decides as v1."""
    requested = document_from_run_args(["-u", "1000", "--read-only", "registry.example.com/org/app:1.0"])
    for name in ("restricted", "restricted:v1"):
        hardened = harden(builtin_policy(name), requested)
        assert hardened.violations == ()
    assert evaluate(builtin_policy("restricted"), document()).allowed


@pytest.mark.parametrize("field, value, path", [
    ("ports", [{"hostPort": "8080"}], "container.ports[0].hostPort"),
    ("ports", {"hostPort": 8080}, "container.ports"),
    ("sysctls", [{"value": "1"}], "container.sysctls[0].name"),
    ("appArmor", [{"type": 1}], "container.appArmor[0].type"),
    ("seLinux", [["spc_t"]], "container.seLinux[0]"),
    ("procMount", True, "container.procMount"),
    ("hostProcess", "true", "container.hostProcess"),
])
def test_a_malformed_field_is_an_input_error_naming_it(field: str, value: Any, path: str) -> None:
    with pytest.raises(InputDocumentError) as info:
        evaluate(builtin_policy("restricted"), document(**{field: value}))
    assert info.value.path == path


def test_a_policy_can_widen_or_narrow_them(policy_from: Callable[[str], Any], tmp_path: Path) -> None:
    by_name = {c.name: c for c in DENIED}
    wider = policy_from("""
        runtime:
          hostPorts: true
          sysctls: {allowed: [kernel.msgmax]}
          seLinux: {allowedTypes: [container_t, spc_t]}
    """)
    for name in ("host-port", "sysctl-unsafe", "selinux-type"):
        assert evaluate(wider, _located(by_name[name]).document).allowed, name
    assert rules(evaluate(wider, _located(by_name["selinux-user"]).document)) == {"runtime.seLinux"}
    text = (tmp_path / "policy.yaml").read_text()
    assert any("hostPorts: true loosens profile restricted:v2" in w for w in lint(wider, text, "policy.yaml"))
    narrower = policy_from("runtime:\n  sysctls: {allowed: []}\n  appArmor: {allowed: [RuntimeDefault]}\n")
    for name in ("sysctl-safe", "apparmor-localhost"):
        case = next(c for c in ALLOWED if c.name == name)
        assert not evaluate(narrower, _located(case).document).allowed, name
