"""The command line as runc's callers write it, the log they read, ``features``, ``spec``, ``--version``:
through the installed console script, without containers (no root needed)."""

from __future__ import annotations

import json
import re
import subprocess  # nosec B404 # the runtime with an argument list
from pathlib import Path

import jsonschema
import pytest

from engine.errors import UsageError
from stockade.oci_runtime.argv import BOOL, INT, LIST, TEXT, Flag, parse
from tests.oci_runtime.support import Runtime

FLAGS = (Flag("root", TEXT), Flag("detach", BOOL, ("d",)), Flag("env", LIST, ("e",)), Flag("n", INT, default=0))

# The OCI runtime spec's features schema (features-schema.json, features-linux.json), restated.
_STRINGS = {"type": "array", "items": {"type": "string"}}
FEATURES_SCHEMA = {
    "type": "object", "required": ["ociVersionMin", "ociVersionMax"],
    "properties": {
        "ociVersionMin": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+"},
        "ociVersionMax": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+"},
        "hooks": _STRINGS, "mountOptions": _STRINGS,
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "linux": {"type": "object", "properties": {
            "namespaces": {"type": "array", "items": {"enum": ["mount", "pid", "network", "uts", "ipc", "user",
                                                               "cgroup", "time"]}},
            "capabilities": {"type": "array", "items": {"type": "string", "pattern": "^CAP_[A-Z_]+$"}},
            "cgroup": {"type": "object", "properties": {k: {"type": "boolean"} for k in
                                                        ("v1", "v2", "systemd", "systemdUser", "rdma")}},
            "seccomp": {"type": "object", "properties": {
                "enabled": {"type": "boolean"},
                "actions": {"type": "array", "items": {"pattern": "^SCMP_ACT_"}},
                "operators": {"type": "array", "items": {"pattern": "^SCMP_CMP_"}},
                "archs": {"type": "array", "items": {"pattern": "^SCMP_ARCH_"}},
                "knownFlags": _STRINGS, "supportedFlags": _STRINGS}},
            "apparmor": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
            "selinux": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
            "intelRdt": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
        }},
    },
}


def test_go_style_flags() -> None:
    p = parse(["-root", "/r", "--detach", "-e", "A=1", "--env=B=2", "--n=0x10", "create", "-x"], FLAGS)
    assert p.text("root") == "/r" and p.flag("detach") and p.many("env") == ["A=1", "B=2"]
    assert p.number("n") == 16 and p.rest == ["create", "-x"]  # parsing stops at the first argument
    assert parse(["--detach=false", "--", "-d"], FLAGS).values["detach"] is False
    assert parse(["--detach=false", "--", "-d"], FLAGS).rest == ["-d"]
    assert parse(["-d", "id", "sh", "-c", "x"], FLAGS).rest == ["id", "sh", "-c", "x"]


@pytest.mark.parametrize("args, message", [
    (["--nope"], "flag provided but not defined: -nope"),
    (["--root"], "flag needs an argument: -root"),
    (["--detach=maybe"], 'invalid boolean value "maybe" for -detach'),
    (["--n", "ten"], 'invalid value "ten" for flag -n'),
])
def test_bad_flags(args: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        parse(args, FLAGS)


def test_unknown_global_flag_and_verb_fail_like_runc(runtime: Runtime) -> None:
    proc = runtime("--bogus", "state", "x")
    assert proc.returncode == 2 and "flag provided but not defined: -bogus" in proc.stderr
    proc = runtime("frobnicate")
    assert proc.returncode == 2 and "No help topic for 'frobnicate'" in proc.stderr
    proc = runtime("pause", "x")
    assert proc.returncode == 1 and "pause is not supported" in proc.stderr


def test_errors_are_json_log_lines_and_one_stderr_line(runtime: Runtime) -> None:
    proc = runtime("state", "nosuch")
    assert proc.returncode == 1 and proc.stderr == "container nosuch does not exist\n"
    (line,) = runtime.log_lines()
    assert set(line) == {"level", "msg", "time"} and line["level"] == "error"
    assert line["msg"] == "container nosuch does not exist"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d$", line["time"])


def test_text_log_format(runtime: Runtime) -> None:
    argv = runtime.argv("state", "nosuch")
    argv[argv.index("json")] = "text"
    subprocess.run(argv, capture_output=True, check=False)  # nosec B603
    assert re.match(r'^time="[^"]+" level=error msg="container nosuch does not exist"$',
                    runtime.log.read_text().strip())


@pytest.mark.parametrize("cid", ["../etc", ".hidden", "-x", "a/b", "x" * 1025, ""])
def test_ids_are_checked(runtime: Runtime, cid: str) -> None:
    proc = runtime("state", "--", cid)
    assert proc.returncode == 1 and "invalid container id" in proc.stderr


def test_features_document(runtime: Runtime) -> None:
    doc = json.loads(runtime.ok("features"))
    jsonschema.validate(doc, FEATURES_SCHEMA)
    assert doc["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                            "poststop"]
    linux = doc["linux"]
    assert set(linux["namespaces"]) == {"mount", "pid", "network", "uts", "ipc", "user", "cgroup"}
    assert "CAP_CHECKPOINT_RESTORE" in linux["capabilities"] and "SCMP_ACT_NOTIFY" not in linux["seccomp"]["actions"]
    assert linux["cgroup"] == {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False}
    assert linux["apparmor"] == {"enabled": False}


def test_version_is_three_lines_as_go_runc_parses_them(runtime: Runtime) -> None:
    lines = runtime.ok("--version").splitlines()
    assert len(lines) == 3 and lines[0].split("version ")[1] and lines[1].startswith("commit: ")
    assert lines[2] == "spec: 1.0.2"


def test_spec_writes_a_bundle_config_once(tmp_path: Path, runtime: Runtime) -> None:
    runtime.ok("spec", "--bundle", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["process"]["noNewPrivileges"] is True and config["root"]["readonly"] is True
    assert {"type": "mount"} in config["linux"]["namespaces"]
    again = runtime("spec", "-b", tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr
