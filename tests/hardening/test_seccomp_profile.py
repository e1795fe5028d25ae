"""Docker's profile expanded for one container: includes/excludes on caps, arch and kernel; and every
malformed profile refused with one line naming the entry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hardening.capabilities import DEFAULT
from hardening.seccomp.profile import DEFAULT_PROFILE, ProfileError, expand, load, validate

AMD64 = ("SCMP_ARCH_X86_64", "amd64")
VECTOR_SHA256 = "536529b665dd0972c37bfb569f5d4ac8a53592e7b00752bc39ff063ca9864c74"


def _names(oci: dict) -> set[str]:
    return {n for rule in oci["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}


def test_vendored_profile_is_the_vector_unmodified() -> None:
    assert hashlib.sha256(DEFAULT_PROFILE.read_bytes()).hexdigest() == VECTOR_SHA256
    assert "Apache License" in (DEFAULT_PROFILE.parent / "LICENSE").read_text()


def test_default_caps_expand_as_docker_does() -> None:
    _, doc = load(DEFAULT_PROFILE)
    oci = expand(doc, list(DEFAULT), arch=AMD64, kernel=(6, 18))
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and oci["defaultErrnoRet"] == 1
    assert len(oci["syscalls"]) == 15  # the test vector's expectation for amd64 + Docker's caps
    allowed = _names(oci)
    assert {"read", "arch_prctl", "modify_ldt", "ptrace", "chroot"} <= allowed
    assert not {"mount", "unshare", "bpf", "reboot", "syslog", "s390_runtime_instr"} & allowed
    clone3 = [r for r in oci["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_capabilities_and_kernel_select_entries() -> None:
    _, doc = load(DEFAULT_PROFILE)
    admin = expand(doc, [*DEFAULT, "CAP_SYS_ADMIN"], arch=AMD64, kernel=(6, 18))
    assert {"mount", "unshare", "clone3"} <= _names(admin)
    assert not any(r["names"] == ["clone3"] and r["action"] != "SCMP_ACT_ALLOW" for r in admin["syscalls"])
    old = expand(doc, list(DEFAULT), arch=AMD64, kernel=(4, 4))
    assert "ptrace" not in _names(old)  # minKernel 4.8
    arm = expand(doc, list(DEFAULT), arch=("SCMP_ARCH_AARCH64", "arm64"), kernel=(6, 18))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in _names(arm) and "breakpoint" in _names(arm)


def test_oci_profile_keeps_its_architectures() -> None:
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    validate(oci, "test")
    out = expand(oci, [], arch=AMD64, kernel=(6, 18))
    assert out["architectures"] == ["SCMP_ARCH_X86_64"]
    assert out["syscalls"] == [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]


@pytest.mark.parametrize("doc, message", [
    ([], "must be a JSON object"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}, "syscalls must be a list"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}, "syscalls[0] names"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "KILL"}]},
     "syscalls[0].action"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "value": 1,
                                                                        "op": "SCMP_CMP_EQ"}]}]},
     "syscalls[0].args[0]"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}]}, "errnoRet"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": "SCMP_ARCH_X86_64"}, "architectures"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "new"}}]},
     "minKernel"),
])
def test_malformed_profiles_are_refused(doc: object, message: str) -> None:
    with pytest.raises(ProfileError) as err:
        validate(doc, "profile.json")
    assert "profile.json" in str(err.value) and message in str(err.value)


def test_unreadable_and_oversized_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        load(bad)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "pad": "x" * 2_000_000}))
    with pytest.raises(ProfileError, match="larger than"):
        load(huge)
    with pytest.raises(ProfileError, match="cannot read"):
        load(tmp_path / "missing.json")
