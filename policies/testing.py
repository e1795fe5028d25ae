"""``stockade policy test DIR``: policy test cases with expected decisions, as ``kyverno test`` runs.

Every ``stockade-test.yaml`` under DIR names a policy and its cases; each case gives an input
(an input document inline or in a JSON/YAML file, or a run line) and the expected outcome. The test
file is validated as strictly as a policy (unknown fields are errors with the closest spelling).

    apiVersion: stockade.dev/v1
    kind: PolicyTest
    metadata: {name: web-policy}
    policy: ../policy.yaml          # or a built-in profile name
    now: 2026-01-01                 # optional: the date exceptions are judged on
    cases:
      - name: privileged is refused
        run: stockade run --privileged busybox
        expect: {decision: deny, violations: [runtime.privileged]}
      - name: the hardened default passes
        input: inputs/ok.json
        expect: {decision: allow}

Listed ``violations``/``warnings``/``audit``/``exempted`` are compared as sets of rule ids with what
the decision reports; a list left out is not compared.
"""

from __future__ import annotations

import datetime
import enum
import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from policies.errors import PolicyError, PolicyLoadError
from policies.evaluation import evaluate
from policies.effective import harden
from policies.loader import load_policy, resolve_policy
from policies.model import Metadata, Text
from policies.runline import document_from_run_args, split_run_line
from policies.typed import Converter
from policies.yamlsource import load_documents, read_text

TEST_FILE = "stockade-test.yaml"


class Outcome(str, enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Expect:
    decision: Outcome
    violations: tuple[str, ...] | None = None
    warnings: tuple[str, ...] | None = None
    audit: tuple[str, ...] | None = None
    exempted: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Case:
    name: Text
    expect: Expect
    input: str | None = None          # a JSON/YAML file, relative to the test file
    document: dict[str, Any] | None = None
    run: str | None = None

    def problems(self) -> Iterator[tuple[str | None, str]]:
        if sum(x is not None for x in (self.input, self.document, self.run)) != 1:
            yield None, "give exactly one of 'input' (a file), 'document' (inline) or 'run' (a run line)"


@dataclass(frozen=True, slots=True)
class TestFile:
    api_version: str
    kind: str
    metadata: Metadata
    policy: Text
    cases: tuple[Case, ...]
    now: datetime.date | None = None

    def problems(self) -> Iterator[tuple[str | None, str]]:
        if self.api_version != "stockade.dev/v1":
            yield "apiVersion", "must be 'stockade.dev/v1'"
        if self.kind != "PolicyTest":
            yield "kind", "must be 'PolicyTest'"
        if not self.cases:
            yield "cases", "list at least one case"


@dataclass(frozen=True, slots=True)
class CaseResult:
    file: str
    name: str
    passed: bool
    problems: tuple[str, ...]
    decision: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "case": self.name, "result": "pass" if self.passed else "fail",
                "problems": list(self.problems), "decision": self.decision}


def find_test_files(directory: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        if TEST_FILE in files:
            found.append(os.path.join(root, TEST_FILE))
    return found


def _document(case: Case, base: str, file: str) -> Mapping[str, Any]:
    if case.document is not None:
        return case.document
    if case.run is not None:
        try:
            return document_from_run_args(split_run_line(case.run), cwd=base)
        except ValueError as exc:
            raise PolicyLoadError(file, None, None, f"case {case.name!r}", f"run line: {exc}") from None
    path = os.path.join(base, case.input or "")
    docs = load_documents(read_text(path, limit=4 * 1024 * 1024, what="test input"), path)
    if len(docs) != 1 or not isinstance(docs[0].value, dict):
        raise PolicyLoadError(path, None, None, "", "a test input must be one JSON or YAML object")
    return docs[0].value


def _compare(what: str, expected: tuple[str, ...] | None, got: list[str]) -> list[str]:
    if expected is None or set(expected) == set(got):
        return []
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    out = []
    if missing:
        out.append(f"expected {what} {', '.join(missing)} not reported")
    if extra:
        out.append(f"unexpected {what} {', '.join(extra)}")
    return out


def run_test_file(file: str) -> list[CaseResult]:
    """Run every case of one test file; a broken file or policy raises PolicyError (exit 2)."""
    docs = load_documents(read_text(file, limit=4 * 1024 * 1024, what="policy test"), file)
    if len(docs) != 1:
        raise PolicyLoadError(file, None, None, "", "expected one YAML document")
    spec: TestFile = Converter(docs[0]).build(TestFile, docs[0].value, ())
    base = os.path.dirname(os.path.abspath(file))
    candidate = os.path.join(base, spec.policy)
    policy = load_policy(candidate) if os.path.exists(candidate) else resolve_policy(spec.policy)
    results = []
    for case in spec.cases:
        document = _document(case, base, file)
        try:
            if case.run is not None:
                hardened = harden(policy, document)
                document = hardened.document
            decision = evaluate(policy, document, now=spec.now)
        except PolicyError as exc:
            results.append(CaseResult(file, case.name, False, (f"evaluation failed: {exc}",), None))
            continue
        d = decision.as_dict()
        problems = [] if d["decision"] == case.expect.decision.value else \
            [f"expected {case.expect.decision.value}, got {d['decision']}"]
        for what, expected in (("violations", case.expect.violations), ("warnings", case.expect.warnings),
                               ("audit", case.expect.audit), ("exempted", case.expect.exempted)):
            problems += _compare(what, expected, [r["rule"] for r in d[what]])
        results.append(CaseResult(file, case.name, not problems, tuple(problems), d))
    return results

