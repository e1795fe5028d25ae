"""Run lines parsed with Docker's flag names, and hardening in both directions."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from policies import builtin_policy, evaluate, harden
from policies.runline import document_from_run_args, split_run_line
from tests.policies.conftest import rules


def run(line: str, **kw: Any) -> dict[str, Any]:
    return document_from_run_args(split_run_line(line), **kw)


def test_security_flags_are_read_as_docker_reads_them() -> None:
    doc = run("sudo stockade --root /r run -it --rm --name x -e A=1 -p 80:80 --privileged -u 0:0 --read-only "
              "--cap-add SYS_ADMIN --cap-drop=NET_RAW --security-opt seccomp=unconfined "
              "--security-opt no-new-privileges=false --network host --pid=host --ipc host --uts host "
              "--userns host --cgroupns host -v /:/host -v ./data:/data:ro -v named:/n -v /anon "
              "--mount type=bind,src=/srv,dst=/srv,readonly --tmpfs /tmp:size=64m -m 1g --cpus 1.5 "
              "--pids-limit 100 --device /dev/fuse busybox:1.36 sh -c 'id -u'", cwd="/work")
    c = doc["container"]
    assert doc["image"] == {"reference": "busybox:1.36"} and doc["context"]["command"] == ["sh", "-c", "id -u"]
    assert c["user"] == {"uid": 0, "gid": 0} and c["privileged"] and c["readOnlyRootFilesystem"]
    assert c["capabilities"] == {"add": ["SYS_ADMIN"], "drop": ["NET_RAW"]}
    assert c["seccomp"] == {"type": "Unconfined"} and c["noNewPrivileges"] is False
    assert set(c["namespaces"].values()) == {"host"} and len(c["namespaces"]) == 6
    assert [(m["type"], m["source"], m["destination"], m["readOnly"]) for m in c["mounts"]] == [
        ("bind", "/", "/host", False), ("bind", "/work/data", "/data", True), ("volume", "named", "/n", False),
        ("volume", None, "/anon", False), ("bind", "/srv", "/srv", True), ("tmpfs", None, "/tmp", False)]
    assert c["resources"] == {"memory": 2**30, "cpus": 1.5, "pids": 100} and c["devices"] == ["/dev/fuse"]


def test_localhost_seccomp_profile_is_hashed_by_the_callback() -> None:
    doc = run("stockade run --security-opt seccomp=prof.json busybox", cwd="/etc", hash_file=lambda p: "ab" + p)
    assert doc["container"]["seccomp"] == {"type": "Localhost", "profile": "/etc/prof.json",
                                           "sha256": "ab/etc/prof.json"}


@pytest.mark.parametrize("line, problem", [
    ("stockade run --cap-ad SYS_ADMIN busybox", "unrecognized arguments"),
    ("stockade run --privileged", "required"),
    ("ls -l", "not a stockade/docker/podman run line"),
    ("stockade pull busybox", "no 'run' verb"),
    ("stockade run --security-opt no-new-privileges=maybe busybox", "expected true or false"),
    ("stockade run --mount type=nfs,dst=/x busybox", "not bind, volume or tmpfs"),
    ("stockade run --cpus many busybox", "not a number"),
    ("stockade run 'unterminated busybox", "cannot split"),
])
def test_bad_run_lines_are_errors(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        run(line)


def test_volumes_from_is_a_volume_kind_no_profile_allows() -> None:
    doc = run("stockade run --rootfs --volumes-from db:ro busybox")
    assert doc["container"]["mounts"][0]["kind"] == "volumes-from"
    assert rules(evaluate(builtin_policy("restricted"), harden(builtin_policy("restricted"), doc).document)) == {
        "runtime.mounts"}


def test_flags_after_the_image_belong_to_the_command() -> None:
    doc = run("docker run busybox --privileged")
    assert "privileged" not in doc["container"] and doc["context"]["command"] == ["--privileged"]


def test_an_image_without_user_runs_as_65534_with_everything_hardened() -> None:
    doc = run("stockade run busybox")
    doc["image"]["config"] = {"User": ""}
    hardened = harden(builtin_policy("restricted"), doc)
    c = hardened.document["container"]
    assert c["user"] == {"uid": 65534, "gid": 65534} and c["readOnlyRootFilesystem"] is True
    assert c["capabilities"]["drop"] == ["ALL"] and c["seccomp"] == {"type": "RuntimeDefault"}
    assert c["noNewPrivileges"] is True and c["privileged"] is False
    assert not hardened.violations and evaluate(builtin_policy("restricted"), hardened.document).allowed
    assert {a.path for a in hardened.applied} >= {"container.user", "container.seccomp", "container.noNewPrivileges"}
    assert doc["container"] == {}  # the request is not modified


@pytest.mark.parametrize("config_user, user, run_as_non_root", [
    ("1000", None, True), ("app", None, True), (None, None, True), ("0", {"uid": 65534, "gid": 65534}, True)])
def test_image_users_are_kept_when_non_root(config_user: str | None, user: Any, run_as_non_root: Any) -> None:
    doc = run("stockade run busybox")
    if config_user is not None:
        doc["image"]["config"] = {"User": config_user}
    c = harden(builtin_policy("restricted"), doc).document["container"]
    assert c.get("user") == user and c.get("runAsNonRoot") == run_as_non_root


def test_explicit_requests_that_break_the_policy_are_the_violations() -> None:
    doc = run("stockade run --privileged --cap-add SYS_ADMIN -u 0 --security-opt seccomp=unconfined "
              "-v /:/host --cap-drop NET_RAW busybox")
    hardened = harden(builtin_policy("restricted"), doc)
    assert {f.rule for f in hardened.violations} == {
        "runtime.privileged", "runtime.allowPrivilegeEscalation", "runtime.capabilities.add", "runtime.runAsNonRoot",
        "runtime.seccomp", "runtime.mounts"}
    assert hardened.document["container"]["capabilities"]["drop"] == ["NET_RAW", "ALL"]  # dropping more is kept
    assert rules(evaluate(builtin_policy("restricted"), hardened.document)) == {f.rule for f in hardened.violations}


def test_explicit_safe_choices_are_kept(policy_from: Callable[[str], Any]) -> None:
    policy = policy_from("runtime:\n  minimumUid: 1000\n  resources:\n    defaults: {memory: 256Mi, pids: 512}\n"
                         "    max: {memory: 1Gi}\n")
    doc = run("stockade run -u 2000 -m 512m --tmpfs /tmp busybox")
    hardened = harden(policy, doc)
    c = hardened.document["container"]
    assert c["user"] == {"uid": 2000} and c["resources"] == {"memory": 512 * 2**20, "pids": 512}
    assert not hardened.violations
    named = harden(policy, {**run("stockade run busybox"), "image": {"reference": "busybox", "config": {"User": "app"}}})
    assert named.document["container"]["user"] == {"uid": 65534, "gid": 65534}  # a name cannot prove uid >= 1000


def test_privileged_profile_hardens_nothing() -> None:
    hardened = harden(builtin_policy("privileged"), run("stockade run --privileged busybox"))
    assert hardened.applied == () and hardened.violations == ()


def test_a_user_in_non_ascii_digits_is_a_name_not_a_uid() -> None:
    """``"\u00b2".isdigit()`` is true and ``int("\u00b2")`` fails: such a user is a name, resolved (and
    refused) against the image's /etc/passwd like any other."""
    from policies.runflags import user_fact

    assert user_fact("\u00b2") == {"name": "\u00b2"}
    assert user_fact("0:\u00b2") == {"uid": 0}  # a group name: resolved at start
