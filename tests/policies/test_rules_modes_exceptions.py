"""CEL rules, modes per policy and per rule, and exceptions (expired ones inert and reported)."""

from __future__ import annotations

import datetime
import subprocess  # nosec B404 # runs the interpreter to observe imports
import sys
from typing import Any, Callable

import pytest

from policies import evaluate
from tests.policies.conftest import document, rules

RULES = """
profile: restricted
rules:
  - id: no-latest
    expression: "!image.reference.endsWith(':latest')"
    message: image must not use :latest
    mode: warn
  - id: memory-limit
    expression: "has(container.resources.memory) && container.resources.memory <= 536870912"
    message: at most 512 MiB
    path: container.resources.memory
    fix: set --memory 512m
  - id: team-label
    expression: "context.team == 'web'"
    message: only the web team
    mode: audit
"""


def test_cel_rules_pass(policy_from: Callable[[str], Any]) -> None:
    policy = policy_from(RULES)
    doc = document("registry.example.com/org/app:1.0")
    doc["context"] = {"team": "web"}
    decision = evaluate(policy, doc)
    assert decision.allowed and not decision.results


def test_cel_rules_fail_with_their_modes(policy_from: Callable[[str], Any]) -> None:
    policy = policy_from(RULES)
    doc = document("registry.example.com/org/app:latest", resources={"memory": 2**30})
    doc["context"] = {"team": "db"}
    decision = evaluate(policy, doc)
    assert rules(decision) == {"memory-limit"} and rules(decision, "warnings") == {"no-latest"}
    assert rules(decision, "audits") == {"team-label"}
    (v,) = decision.violations
    assert (v.finding.path, v.finding.fix, v.finding.message) == ("container.resources.memory", "set --memory 512m",
                                                                  "at most 512 MiB")


def test_cel_evaluation_error_fails_closed(policy_from: Callable[[str], Any]) -> None:
    policy = policy_from(RULES)
    doc = document("registry.example.com/org/app:1.0")  # no context.team: a missing key
    (a,) = evaluate(policy, doc).audits
    assert a.finding.rule == "team-label" and str(a.finding.found).startswith("evaluation error")


def test_cel_is_imported_only_for_policies_with_rules() -> None:
    code = ("import sys; from policies import builtin_policy, evaluate; p = builtin_policy('restricted'); "
            "evaluate(p, {'image': {'reference': 'busybox'}, 'container': {}}); "
            "print('cel_expr_python' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # nosec B603
    assert out.stdout.strip() == "False"


def test_policy_mode_warn_denies_nothing(policy_from: Callable[[str], Any]) -> None:
    decision = evaluate(policy_from("mode: warn\n"), document(privileged=True))
    assert decision.allowed and rules(decision, "warnings") == {"runtime.privileged",
                                                                 "runtime.allowPrivilegeEscalation"}


def test_per_rule_mode_for_a_builtin_rule(policy_from: Callable[[str], Any]) -> None:
    policy = policy_from("modes:\n  runtime.readOnlyRootFilesystem: audit\n")
    decision = evaluate(policy, document(readOnlyRootFilesystem=False))
    assert decision.allowed and rules(decision, "audits") == {"runtime.readOnlyRootFilesystem"}


EXCEPTIONS = """
exceptions:
  - id: EXC-1
    rules: [runtime.readOnlyRootFilesystem]
    images: ["registry.example.com/org/legacy-*"]
    reason: writes /var/cache; SEC-123
    expires: 2030-06-30
  - id: EXC-OLD
    rules: [runtime.privileged]
    images: ["registry.example.com/org/**"]
    reason: old driver
    expires: 2020-01-01
"""


@pytest.mark.parametrize("today, exempt", [(datetime.date(2030, 6, 30), True), (datetime.date(2030, 7, 1), False)])
def test_exception_applies_until_it_expires(policy_from: Callable[[str], Any], today: datetime.date,
                                            exempt: bool) -> None:
    decision = evaluate(policy_from(EXCEPTIONS), document("registry.example.com/org/legacy-app:2",
                                                          readOnlyRootFilesystem=False), now=today)
    assert decision.allowed is exempt
    if exempt:
        (e,) = decision.exempted
        assert (e.exception, e.exception_expires, e.exception_reason) == ("EXC-1", "2030-06-30",
                                                                          "writes /var/cache; SEC-123")
    else:
        assert {e.id for e in decision.expired_exceptions} == {"EXC-1", "EXC-OLD"}


def test_expired_exception_is_inert_and_reported(policy_from: Callable[[str], Any]) -> None:
    decision = evaluate(policy_from(EXCEPTIONS), document("registry.example.com/org/app:2", privileged=True),
                        now=datetime.date(2026, 1, 1))
    assert not decision.allowed and "runtime.privileged" in rules(decision)
    (expired,) = decision.expired_exceptions
    assert expired.as_dict() == {"id": "EXC-OLD", "rules": ["runtime.privileged"], "expires": "2020-01-01",
                                 "reason": "old driver"}


def test_exception_scoped_to_other_images_does_not_apply(policy_from: Callable[[str], Any]) -> None:
    decision = evaluate(policy_from(EXCEPTIONS), document("registry.example.com/org/app:2",
                                                          readOnlyRootFilesystem=False), now=datetime.date(2026, 1, 1))
    assert rules(decision) == {"runtime.readOnlyRootFilesystem"} and not decision.exempted
