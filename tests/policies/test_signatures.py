"""Signature requirements: what trust is asked to verify, and how the verified facts are judged."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from policies import evaluate, requirements_for
from policies.signatures import IdentityRequirement
from tests.policies.conftest import document, make_key, rules
from tests.support.identity_regexps import CASES

DIGEST = "sha256:" + "a" * 64
ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1.0"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    return {name: make_key(tmp_path, f"{name}.pub") for name in ("release", "qa", "other")}


@pytest.fixture
def signed_policy(policy_from: Callable[[str], Any], keys: dict[str, tuple[Path, str]], tmp_path: Path) -> Any:
    root = tmp_path / "root.json"
    root.write_text('{"signed": {}}')
    return policy_from(f"""
        profile: privileged
        signatures:
          - name: org-release
            images: ["registry.example.com/org/**"]
            keys: [{{path: release.pub}}, {{path: qa.pub}}]
            threshold: 2
          - images: ["ghcr.io/org/*"]
            identities:
              - {{subjectRegExp: '^https://github\\.com/org/[^/]+/\\.github/workflows/release\\.yml@refs/tags/v.+$',
                  issuer: {ISSUER}}}
            transparencyLog: required
          - images: ["registry.example.com/org/tuf-*"]
            tuf: {{url: "http://127.0.0.1:8080/tuf", root: root.json}}
        """)


def _signed(reference: str, *sigs: dict[str, Any], **image: Any) -> dict[str, Any]:
    doc = document(reference)
    doc["image"].update(signatures=list(sigs), **image)
    return doc


def test_requirements_for_returns_the_matching_entries_as_plain_data(signed_policy: Any,
                                                                     keys: dict[str, tuple[Path, str]]) -> None:
    (req,) = requirements_for(signed_policy, "registry.example.com/org/app:1.0")
    assert req.name == "org-release" and req.threshold == 2 and not req.transparency_log
    assert [k.key_id for k in req.keys] == [keys["release"][1], keys["qa"][1]]
    assert req.keys[0].pem.startswith("-----BEGIN PUBLIC KEY-----") and req.keys[0].path == str(keys["release"][0])
    assert req.as_dict()["keys"][0]["keyId"] == keys["release"][1]
    (keyless,) = requirements_for(signed_policy, "ghcr.io/org/app@" + DIGEST)
    assert keyless.transparency_log and keyless.identities[0].issuer == ISSUER
    assert [r.name for r in requirements_for(signed_policy, "registry.example.com/org/tuf-app:1")] == \
        ["org-release", "signatures[2]"]
    assert requirements_for(signed_policy, "busybox") == []
    assert requirements_for(signed_policy, "ghcr.io/org/team/app") == []  # '*' is one path segment


def test_threshold_of_distinct_keys(signed_policy: Any, keys: dict[str, tuple[Path, str]]) -> None:
    ref = "registry.example.com/org/app:1.0"
    one = {"kind": "key", "keyId": keys["release"][1], "digest": DIGEST}
    two = {"kind": "key", "keyId": "sha256:" + keys["qa"][1], "digest": DIGEST}
    assert evaluate(signed_policy, _signed(ref, one, two)).allowed
    denied = evaluate(signed_policy, _signed(ref, one, dict(one)))
    (v,) = denied.violations
    assert v.finding.rule == "signatures" and "1 of 2 required" in v.finding.message


def test_a_signature_by_another_key_or_over_another_digest_does_not_count(
        signed_policy: Any, keys: dict[str, tuple[Path, str]]) -> None:
    ref = "registry.example.com/org/app:1.0"
    other = {"kind": "key", "keyId": keys["other"][1], "digest": DIGEST}
    stale = {"kind": "key", "keyId": keys["qa"][1], "digest": "sha256:" + "f" * 64}
    good = {"kind": "key", "keyId": keys["release"][1], "digest": DIGEST}
    assert rules(evaluate(signed_policy, _signed(ref, other, stale, good))) == {"signatures"}


def test_an_unsigned_image_is_refused(signed_policy: Any) -> None:
    (v,) = evaluate(signed_policy, _signed("registry.example.com/org/app:1.0")).violations
    assert "no signature" in v.finding.message and v.finding.path == "image.signatures"


@pytest.mark.parametrize("reference", ["REGISTRY.EXAMPLE.COM/org/app:1.0", "Registry.Example.Com/org/app:1.0"])
def test_a_registry_host_in_another_case_meets_the_same_requirements(signed_policy: Any, reference: str) -> None:
    """A host name is case-insensitive: the same server, the same signers required."""
    assert [r.name for r in requirements_for(signed_policy, reference)] == ["org-release"]
    (v,) = evaluate(signed_policy, _signed(reference)).violations
    assert "no signature" in v.finding.message


def test_keyless_identity_regexp_and_tlog(signed_policy: Any) -> None:
    ref = "ghcr.io/org/app:1.0"
    sig = {"kind": "keyless", "subject": SUBJECT, "issuer": ISSUER, "tlog": {"logIndex": 7}, "digest": DIGEST}
    assert evaluate(signed_policy, _signed(ref, sig)).allowed
    assert not evaluate(signed_policy, _signed(ref, {**sig, "tlog": None})).allowed
    assert not evaluate(signed_policy, _signed(ref, {**sig, "issuer": "https://evil.example"})).allowed
    assert not evaluate(signed_policy, _signed(ref, {**sig, "subject": SUBJECT.replace("release", "dev")})).allowed


def test_verification_error_fails_closed(signed_policy: Any, keys: dict[str, tuple[Path, str]]) -> None:
    good = [{"kind": "key", "keyId": keys[k][1], "digest": DIGEST} for k in ("release", "qa")]
    doc = _signed("registry.example.com/org/app:1.0", *good, verification={"error": "registry timed out"})
    (v,) = evaluate(signed_policy, doc).violations
    assert v.finding.path == "image.verification.error" and "registry timed out" in v.finding.message


def test_unknown_digest_fails_closed(signed_policy: Any, keys: dict[str, tuple[Path, str]]) -> None:
    doc = _signed("registry.example.com/org/app:1.0", {"kind": "key", "keyId": keys["release"][1], "digest": DIGEST})
    doc["image"]["digest"] = None
    assert evaluate(signed_policy, doc).violations[0].finding.path == "image.digest"


@pytest.mark.parametrize("tuf, ok", [
    ({"verified": True, "url": "http://127.0.0.1:8080/tuf/", "digest": DIGEST}, True),
    (None, False),
    ({"verified": False, "error": "expired timestamp"}, False),
    ({"verified": True, "url": "http://127.0.0.1:9999/tuf", "digest": DIGEST}, False),
    ({"verified": True, "url": "http://127.0.0.1:8080/tuf", "digest": "sha256:" + "0" * 64}, False),
])
def test_tuf_requirement(signed_policy: Any, keys: dict[str, tuple[Path, str]], tuf: Any, ok: bool) -> None:
    sigs = [{"kind": "key", "keyId": keys[k][1], "digest": DIGEST} for k in ("release", "qa")]
    decision = evaluate(signed_policy, _signed("registry.example.com/org/tuf-app:1", *sigs, tuf=tuf))
    assert decision.allowed is ok
    assert ok or rules(decision) == {"signatures.tuf"}


@pytest.mark.parametrize("pattern, value, matches", CASES)
def test_identity_regexp_semantics_shared_with_trust(pattern: str, value: str, matches: bool) -> None:
    assert IdentityRequirement(subject_regexp=pattern, issuer=ISSUER).accepts(value, ISSUER) is matches
    assert IdentityRequirement(subject=SUBJECT, issuer_regexp=pattern).accepts(SUBJECT, value) is matches


@pytest.mark.parametrize("pattern, whole", [
    ("^a$", True), ("a", False), ("^a", False), ("a$", False), ("^a|b$", False), ("^(?:a|b)$", True),
    ("(?i)^a$", True), ("(?m)^a$", False), (r"^a\$", False), (r"^a\\$", True), ("^[|]$", True),
    (r"^a[\]|]$", True), ("^(a)|(b)$", False),
])
def test_lint_knows_an_anchored_pattern(pattern: str, whole: bool) -> None:
    from policies.lint import anchored

    assert anchored(pattern) is whole


def test_one_signer_is_one_toward_the_threshold_whatever_patterns_accept_it(policy_from: Callable[[str], Any]) -> None:
    policy = policy_from(f"""
        profile: privileged
        signatures:
          - name: two-people
            images: ["ghcr.io/org/*"]
            identities:
              - {{subjectRegExp: '^https://github\\.com/org/', issuer: {ISSUER}}}
              - {{subject: '{SUBJECT}', issuer: {ISSUER}}}
            threshold: 2
        """)
    one = {"kind": "keyless", "subject": SUBJECT, "issuer": ISSUER, "tlog": {"logIndex": 1}, "digest": DIGEST}
    other = {**one, "subject": "https://github.com/org/other/.github/workflows/r.yml@refs/heads/main"}
    assert not evaluate(policy, _signed("ghcr.io/org/app:1", one)).allowed
    assert not evaluate(policy, _signed("ghcr.io/org/app:1", one, dict(one))).allowed
    assert evaluate(policy, _signed("ghcr.io/org/app:1", other, one)).allowed
