"""Loading policies: every mistake is an error naming file, line and field; nothing weakens silently."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from policies import PolicyLoadError, builtin_policy, load_policy, resolve_policy
from policies.controls import ReadOnlyRoot

HEAD = "apiVersion: stockade.dev/v1\nkind: Policy\nmetadata:\n  name: web\n"


def error_of(write_policy: Callable[[str], Path], body: str) -> PolicyLoadError:
    path = write_policy(body)
    with pytest.raises(PolicyLoadError) as info:
        load_policy(str(path))
    assert info.value.file == str(path)
    return info.value


def test_a_minimal_policy_gets_the_restricted_profile(write_policy: Callable[[str], Path]) -> None:
    policy = load_policy(str(write_policy(HEAD)))
    assert policy.profile == "restricted:v2"  # the newest version, as PSA's "latest"
    assert policy.runtime is not None and policy.runtime.read_only_root_filesystem is True
    assert "runtime.capabilities.drop" in [c.rule for c in policy.controls]


def test_typo_in_a_field_names_file_line_field_and_suggests(write_policy: Callable[[str], Path]) -> None:
    err = error_of(write_policy, HEAD + "spec:\n  runtime:\n    readOnlyRootFilesytem: true\n")
    assert (err.line, err.field) == (7, "spec.runtime.readOnlyRootFilesytem")
    assert "unknown field (did you mean 'readOnlyRootFilesystem'?)" in str(err)
    assert str(err).startswith(f"{err.file}:7:5: spec.runtime.readOnlyRootFilesytem:")


def test_wrong_type_is_an_error_not_a_truthy_string(write_policy: Callable[[str], Path]) -> None:
    err = error_of(write_policy, HEAD + "spec:\n  runtime:\n    privileged: \"false\"\n")
    assert err.line == 7 and err.field == "spec.runtime.privileged"
    assert "expected true or false, found string 'false'" in err.problem


def test_bad_enum_value_lists_choices_and_suggests(write_policy: Callable[[str], Path]) -> None:
    err = error_of(write_policy, HEAD + "spec:\n  mode: enfroce\n")
    assert err.field == "spec.mode" and err.line == 6
    assert "must be one of enforce, warn, audit" in err.problem and "did you mean 'enforce'" in err.problem


def test_nested_list_item_errors_carry_their_index(write_policy: Callable[[str], Path]) -> None:
    err = error_of(write_policy, HEAD + "spec:\n  runtime:\n    capabilities:\n      drop: [ALL, 'not a cap']\n")
    assert err.field == "spec.runtime.capabilities.drop[1]" and err.line == 8


@pytest.mark.parametrize("body, field, problem", [
    ("apiVersion: stockade.dev/v2\nkind: Policy\nmetadata: {name: x}\n", "apiVersion", "must be 'stockade.dev/v1'"),
    ("apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {}\n", "metadata", "missing required field 'name'"),
    (HEAD + "spec:\n  runtime:\n    privileged: false\n    privileged: true\n", "spec.runtime.privileged",
     "duplicate key"),
    (HEAD + "spec:\n  profile: restricted:v9\n", "spec.profile", "no version 'v9'"),
    (HEAD + "spec:\n  profile: strict\n", "spec.profile", "unknown profile 'strict'"),
    (HEAD + "spec:\n  exceptions:\n    - {id: e1, rules: [runtime.privilegd], images: ['**'], reason: r,"
            " expires: 2030-01-01}\n", "spec.exceptions[0].rules[0]", "did you mean 'runtime.privileged'"),
    (HEAD + "spec:\n  modes:\n    runtime.readOnly: warn\n", "spec.modes.runtime.readOnly", "no such rule"),
    (HEAD + "spec:\n  rules:\n    - {id: r1, expression: 'container.privileged ==', message: m}\n",
     "spec.rules[0].expression", "CEL:"),
    (HEAD + "spec:\n  rules:\n    - {id: r1, expression: '1 + 1', message: m}\n", "spec.rules[0].expression",
     "returns int, not a bool"),
    (HEAD + "spec:\n  rules:\n    - {id: runtime.privileged, expression: 'true', message: m}\n",
     "spec.rules[0].id", "built-in rule id"),
    (HEAD + "spec:\n  signatures:\n    - images: ['**']\n      keys: [{path: missing.pub}]\n",
     "spec.signatures[0].keys[0].path", "cannot read key"),
    (HEAD + "spec:\n  signatures:\n    - images: ['**']\n", "spec.signatures[0]", "at least one of 'keys'"),
    (HEAD + "spec:\n  signatures:\n    - images: ['**']\n      identities: [{subject: a}]\n",
     "spec.signatures[0].identities[0]", "'issuer' or 'issuerRegExp'"),
    (HEAD + "spec:\n  signatures:\n    - images: ['**']\n      identities: [{subjectRegExp: '(', issuer: i}]\n",
     "spec.signatures[0].identities[0].subjectRegExp", "invalid regular expression"),
    (HEAD + "spec:\n  runtime:\n    resources:\n      max: {memory: lots}\n", "spec.runtime.resources.max.memory",
     "is not a size"),
    (HEAD + "base: &b {a: 1}\nspec:\n  <<: *b\n", "spec", "merge keys"),
])
def test_invalid_policies_are_refused_with_location(write_policy: Callable[[str], Path], body: str, field: str,
                                                    problem: str) -> None:
    err = error_of(write_policy, body)
    assert err.field == field and problem in err.problem, str(err)
    assert err.line is not None


def test_invalid_yaml_names_the_line(write_policy: Callable[[str], Path]) -> None:
    err = error_of(write_policy, HEAD + "spec: [unclosed\n")
    assert err.line is not None and "not valid YAML" in str(err)


@pytest.mark.parametrize("content, problem", [
    ("-----BEGIN PUBLIC KEY-----\nQUJD\n-----END PUBLIC KEY-----\n", "not a DER SubjectPublicKeyInfo"),  # truncated
    ("-----BEGIN PUBLIC KEY-----\nQUJD=x\n-----END PUBLIC KEY-----\n", "not valid base64"),
    ("-----BEGIN EC PRIVATE KEY-----\nQUJD\n-----END EC PRIVATE KEY-----\n", "not a PEM public key"),
])
def test_key_file_that_is_not_a_public_key(write_policy: Callable[[str], Path], tmp_path: Path, content: str,
                                           problem: str) -> None:
    (tmp_path / "bad.pub").write_text(content)
    err = error_of(write_policy, HEAD + "spec:\n  signatures:\n    - images: ['**']\n      keys: [{path: bad.pub}]\n")
    assert problem in err.problem and err.field == "spec.signatures[0].keys[0].path"


@pytest.mark.parametrize("name, profile", [("restricted", "restricted:v2"), ("baseline", "baseline:v2"),
                                           ("privileged", "privileged:v1"), ("restricted:v1", "restricted:v1"),
                                           ("baseline:v1", "baseline:v1"), ("restricted:v2", "restricted:v2")])
def test_builtin_profiles_load(name: str, profile: str) -> None:
    policy = builtin_policy(name)
    assert policy.profile == profile and policy.name == name.partition(":")[0]


BASELINE_V1_RULES = {"runtime.privileged", "runtime.hostNamespaces", "runtime.capabilities.add", "runtime.seccomp",
                     "runtime.mounts"}
POD_SECURITY_RULES = {"runtime.hostPorts", "runtime.hostProcess", "runtime.sysctls", "runtime.appArmor",
                      "runtime.seLinux", "runtime.procMount"}


@pytest.mark.parametrize("version, rules", [("v1", BASELINE_V1_RULES), ("v2", BASELINE_V1_RULES | POD_SECURITY_RULES)])
def test_profiles_nest_restricted_over_baseline(version: str, rules: set[str]) -> None:
    restricted, baseline = (builtin_policy(f"{n}:{version}") for n in ("restricted", "baseline"))
    assert builtin_policy("privileged").controls == ()
    base_rules = {c.rule for c in baseline.controls}
    assert base_rules == rules
    assert base_rules < {c.rule for c in restricted.controls}
    assert restricted.profile == f"restricted:{version}" and restricted.revision == int(version[1:])


def test_restricted_v1_is_unchanged_by_v2() -> None:
    """A released version never changes: v1's resolved policy has none of v2's settings and is what
    it was (its runtime section, field by field)."""
    v1 = builtin_policy("restricted:v1").to_plain()["spec"]["runtime"]
    assert v1 == {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "privileged": False,
                  "allowPrivilegeEscalation": False,
                  "hostNamespaces": {"network": False, "pid": False, "ipc": False, "uts": False},
                  "capabilities": {"drop": ["ALL"], "allowAdd": ["NET_BIND_SERVICE"]},
                  "seccomp": {"allowed": ["RuntimeDefault", "Localhost"], "required": True},
                  "mounts": {"bind": [], "volumes": ["local", "configMap", "downwardAPI", "emptyDir", "projected",
                                                     "secret", "csi", "persistentVolumeClaim", "ephemeral", "image"]}}
    v2 = builtin_policy("restricted").to_plain()["spec"]["runtime"]
    assert {k: v for k, v in v2.items() if k in v1} == v1


def test_a_policy_field_overrides_its_profile(policy_from: Callable[[str], object]) -> None:
    policy = policy_from("runtime:\n  readOnlyRootFilesystem: false\n")
    assert not any(isinstance(c, ReadOnlyRoot) for c in policy.controls)  # type: ignore[attr-defined]
    assert policy.runtime.run_as_non_root is True  # type: ignore[attr-defined]


def test_profile_privileged_starts_from_nothing(policy_from: Callable[[str], object]) -> None:
    assert policy_from("profile: privileged\n").controls == ()  # type: ignore[attr-defined]


def test_resolve_policy_prefers_an_existing_file(write_policy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    write_policy(HEAD + "spec:\n  profile: privileged\n", name="restricted")
    assert resolve_policy("restricted").name == "web"
    assert resolve_policy("baseline").name == "baseline"
    with pytest.raises(PolicyLoadError, match="cannot read policy"):
        resolve_policy("nonexistent.yaml")


def test_to_plain_round_trips_through_the_loader(write_policy: Callable[[str], Path]) -> None:
    import yaml

    shown = builtin_policy("restricted").to_plain()
    shown.pop("resolvedFrom")
    again = load_policy(str(write_policy(yaml.safe_dump({**shown, "spec": {**shown["spec"], "profile": "privileged"}}))))
    assert again.runtime == builtin_policy("restricted").runtime
