"""``stockade-runtime`` driven through runc's lifecycle, as root, in real namespaces: bundles written by
``runc spec`` and ``crun spec``, ``create``/``start``/``state``/``kill``/``delete``, ``run``, ``exec``,
``ps``, the console socket, hooks, the node policy's hardening seen from inside, a privileged bundle
refused, rlimit clamping, cgroup limits, joined namespaces and sysctls. Every test leaves no state
directory and no cgroup behind (the ``runtime`` fixture checks)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess  # nosec B404 # the runtime and the test shim, argument lists only
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest

from stockade.oci_runtime.execute import MAX_PROCESS
from tests.oci_runtime.support import (CGROUP_PARENT, CGROUP_V1, REPO, Runtime, command_config, make_bundle,
                                       new_id)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")

# The OCI runtime spec's state schema (schema/state-schema.json with defs.json), restated.
STATE_SCHEMA = {
    "type": "object", "required": ["ociVersion", "id", "status", "bundle"],
    "properties": {
        "ociVersion": {"type": "string", "pattern": r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
                                                    r"(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"},
        "id": {"type": "string"},
        "status": {"enum": ["creating", "created", "running", "stopped"]},
        "pid": {"type": "integer", "minimum": 0},
        "bundle": {"type": "string"},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
DEFAULT_CAPS = "00000000a80425fb"  # Docker's default 14


def status_of(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


def _bundle(tmp_path: Path, *args: str, tool: str = "runc", name: str = "bundle",
            edit: Any = None) -> tuple[Path, str]:
    cid = new_id()
    config = command_config(tmp_path / name, *args, tool=tool, cid=cid)
    if edit is not None:
        edit(config)
    return make_bundle(tmp_path / name, config), cid


@contextmanager
def running(runtime: Runtime, tmp_path: Path, *args: str) -> Iterator[str]:
    """A started container running ``args`` (something that sleeps) for a test to exec into; the
    test's end removes it with ``delete --force``, which must SIGKILL it."""
    bundle, cid = _bundle(tmp_path, *args)
    created = runtime.create(bundle, cid)
    runtime.ok("start", cid)
    yield cid
    runtime.ok("delete", "--force", cid)
    assert created.wait() == 137


def _policy(tmp_path: Path, runtime_rules: str, mode: str = "enforce") -> Path:
    path = tmp_path / "node-policy.yaml"
    path.write_text(f"apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {{name: node-test}}\nspec:\n"
                    f"  profile: privileged:v1\n  mode: {mode}\n  runtime:\n{runtime_rules}")
    return path


def test_runc_spec_bundle_through_create_start_state_delete(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "sh", "-c", "echo hello; hostname; exit 3")
    created = runtime.create(bundle, cid)
    state = runtime.state(cid)
    jsonschema.validate(state, STATE_SCHEMA)
    assert (state["status"], state["pid"], state["bundle"], state["id"]) == ("created", created.pid, str(bundle), cid)
    runtime.ok("start", cid)
    assert created.wait() == 3
    assert created.output() == "hello\nrunc\n"
    stopped = runtime.state(cid)
    jsonschema.validate(stopped, STATE_SCHEMA)
    assert stopped["status"] == "stopped" and stopped["pid"] == 0
    again = runtime("start", cid)
    assert again.returncode == 1 and "has stopped" in again.stderr
    runtime.ok("delete", cid)
    gone = runtime("state", cid)
    assert gone.returncode == 1 and f"container {cid} does not exist" in gone.stderr


def test_crun_spec_bundle_with_the_run_verb(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "sh", "-c", "echo from crun $(hostname); exit 4", tool="crun")
    proc = runtime("run", "--bundle", bundle, cid)
    assert proc.returncode == 4 and proc.stdout == "from crun crun\n"
    assert not (runtime.root / cid).exists()  # run deletes what it created


def test_terminal_through_the_console_socket(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "sh", "-c", "tty; echo term=$TERM")
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = True
    (bundle / "config.json").write_text(json.dumps(config))
    path = tmp_path / "console.sock"
    received: dict[str, Any] = {}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                received["name"], received["fds"], _, _ = socket.recv_fds(conn, 1024, 1)
        thread = threading.Thread(target=accept)
        thread.start()
        created = runtime.create(bundle, cid, "--console-socket", path)
        thread.join(timeout=30)
    (master,) = received["fds"]
    assert received["name"].startswith(b"/dev/pts/")
    runtime.ok("start", cid)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break  # EIO: every slave fd is closed
            if not chunk:
                break
            output += chunk
    finally:
        os.close(master)
    assert created.wait() == 0
    assert output.decode().split() == ["/dev/pts/0", "term=xterm"]
    runtime.ok("delete", cid)


def test_terminal_without_console_socket_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "true", edit=lambda c: c["process"].update(terminal=True))
    proc = runtime("create", "--bundle", bundle, cid)
    assert proc.returncode == 1 and "process.terminal needs --console-socket" in proc.stderr
    assert not (runtime.root / cid).exists()


def test_kill_exec_ps_and_delete(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.05; done")
    created = runtime.create(bundle, cid)
    runtime.ok("start", cid)
    assert runtime.state(cid)["status"] == "running"
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sh", "-c", "id -u; grep -E 'CapEff|Seccomp:' /proc/self/status"],
                                   "user": {"uid": 1000, "gid": 1000}, "cwd": "/", "env": ["PATH=/bin"],
                                   "capabilities": {"bounding": ["CAP_SYS_ADMIN", "CAP_KILL"],
                                                    "effective": ["CAP_SYS_ADMIN", "CAP_KILL"],
                                                    "permitted": ["CAP_SYS_ADMIN", "CAP_KILL"]}}))
    exec_out = runtime.ok("exec", "--process", process, cid).split()
    assert exec_out[0] == "1000"
    argv = runtime("exec", "--cwd", "/tmp", cid, "sh", "-c", "pwd; exit 5")
    assert argv.returncode == 5 and argv.stdout == "/tmp\n"
    pids = json.loads(runtime.ok("ps", "--format", "json", cid))
    assert created.pid in pids
    table = runtime.ok("ps", cid).splitlines()
    assert "PID" in table[0] and any(str(created.pid) in line for line in table[1:])
    refused = runtime("delete", cid)
    assert refused.returncode == 1 and "not stopped: running" in refused.stderr
    runtime.ok("kill", cid, "TERM")
    assert created.wait() == 42
    stopped = runtime("kill", cid, "KILL")
    assert stopped.returncode == 1 and "not running" in stopped.stderr
    runtime.ok("delete", cid)


def test_exec_never_gets_more_than_the_container(runtime: Runtime, tmp_path: Path) -> None:
    with running(runtime, tmp_path, "sh", "-c", "sleep 30") as cid:
        process = tmp_path / "process.json"
        process.write_text(json.dumps({
            "args": ["grep", "-E", "CapBnd|NoNewPrivs|Seccomp:", "/proc/self/status"],
            "user": {"uid": 0, "gid": 0}, "cwd": "/", "noNewPrivileges": False,
            "capabilities": {"bounding": ["CAP_SYS_ADMIN", "CAP_KILL"], "effective": ["CAP_SYS_ADMIN", "CAP_KILL"],
                             "permitted": ["CAP_SYS_ADMIN", "CAP_KILL"]}}))
        st = status_of(runtime.ok("exec", "--process", process, cid))
        assert st["CapBnd"] == "0000000000000020"  # CAP_KILL only: runc spec's set has no SYS_ADMIN
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"  # the container's, not the process file's


def test_a_bad_process_file_is_one_error_line(runtime: Runtime, tmp_path: Path) -> None:
    with running(runtime, tmp_path, "sleep", "30") as cid:
        process = tmp_path / "process.json"
        for content, expected in ((b"{" * 100_000, "is not valid JSON"),
                                  (b" " * (MAX_PROCESS + 1), f"is larger than {MAX_PROCESS} bytes")):
            process.write_bytes(content)
            refused = runtime("exec", "--process", process, cid)
            assert refused.returncode == 1 and "Traceback" not in refused.stderr
            assert f"the process file {process} {expected}" in refused.stderr


def test_detached_exec_writes_its_pid_file(runtime: Runtime, tmp_path: Path) -> None:
    with running(runtime, tmp_path, "sleep", "30") as cid:
        pid_file, status_file = tmp_path / "exec.pid", tmp_path / "exec.status"
        shim = subprocess.run(  # nosec B603 # the test shim collects the detached process
            [sys.executable, "-m", "tests.oci_runtime.reaper", str(status_file), "--",
             *runtime.argv("exec", "--detach", "--pid-file", pid_file, cid, "sh", "-c", "exit 9")],
            env={**runtime.env(), "PYTHONPATH": str(REPO)}, capture_output=True, timeout=60)
        assert shim.returncode == 0
        exec_pid = int(pid_file.read_text())
        codes = dict(line.split() for line in status_file.read_text().splitlines())
        assert codes[str(exec_pid)] == "9" and len(codes) == 2  # the exec command (0) and the process (9)


def test_create_refuses_a_duplicate_id_and_delete_force_of_nothing_succeeds(runtime: Runtime,
                                                                            tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "true")
    created = runtime.create(bundle, cid)
    dup = runtime("create", "--bundle", bundle, cid)
    assert dup.returncode == 1 and f"container with id {cid} already exists" in dup.stderr
    runtime.ok("delete", cid)  # created, never started: deleting kills the waiting init
    assert created.wait() == 137
    runtime.ok("delete", "--force", cid)
    assert runtime("delete", cid).returncode == 1


def test_hooks_run_at_each_stage_with_the_state(runtime: Runtime, tmp_path: Path) -> None:
    log = tmp_path / "hooks"
    log.mkdir()

    def hook(stage: str, path: str = "/bin/sh") -> dict[str, Any]:
        target = f"{log}/{stage}.json" if stage != "startContainer" else "/dev/null"
        return {"path": path, "args": ["sh", "-c", f"cat > {target}"]}

    def edit(config: dict[str, Any]) -> None:
        config["hooks"] = {stage: [hook(stage)] for stage in ("prestart", "createRuntime", "createContainer",
                                                              "startContainer", "poststart", "poststop")}
        config["annotations"] = {"test": "hooks"}
    bundle, cid = _bundle(tmp_path, "sh", "-c", "exit 0", edit=edit)
    created = runtime.create(bundle, cid)
    runtime.ok("start", cid)
    assert created.wait() == 0
    runtime.ok("delete", cid)
    seen = {p.stem: json.loads(p.read_text()) for p in log.glob("*.json")}
    assert sorted(seen) == ["createContainer", "createRuntime", "poststart", "poststop", "prestart"]
    for stage, status in (("prestart", "creating"), ("createRuntime", "creating"), ("createContainer", "creating"),
                          ("poststart", "running"), ("poststop", "stopped")):
        assert seen[stage]["status"] == status and seen[stage]["id"] == cid, stage
        assert seen[stage]["pid"] == created.pid and seen[stage]["annotations"] == {"test": "hooks"}


def test_failing_prestart_aborts_create_and_failing_poststart_only_warns(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "true", edit=lambda c: c.update(
        hooks={"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo no network; exit 1"]}]}))
    proc = runtime("create", "--bundle", bundle, cid)
    assert proc.returncode == 1 and "prestart hook /bin/sh failed (exit status 1): no network" in proc.stderr
    assert not (runtime.root / cid).exists()
    assert not (CGROUP_V1 / "memory" / CGROUP_PARENT / cid).exists()
    bundle, cid = _bundle(tmp_path, "true", name="second", edit=lambda c: c.update(
        hooks={"poststart": [{"path": "/bin/false"}]}))
    created = runtime.create(bundle, cid)
    runtime.ok("start", cid)
    assert created.wait() == 0
    assert any(line["level"] == "warning" and "poststart hook /bin/false failed" in line["msg"]
               for line in runtime.log_lines())


def _unconfigured(config: dict[str, Any]) -> None:
    """What a hand-written bundle may leave out: capabilities, seccomp, no_new_privs."""
    del config["process"]["capabilities"]
    config["process"]["noNewPrivileges"] = False


def test_default_node_policy_adds_runtime_default_seccomp(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "cat", "/proc/self/status", edit=_unconfigured)
    created = runtime.create(bundle, cid)
    runtime.ok("start", cid)
    assert created.wait() == 0
    st = status_of(created.output())
    assert st["Seccomp"] == "2" and st["CapEff"] == DEFAULT_CAPS and st["NoNewPrivs"] == "0"
    assert any(line["level"] == "info" and "applied container.seccomp = {\"type\": \"RuntimeDefault\"}" in line["msg"]
               for line in runtime.log_lines())


def test_node_policy_drops_capabilities_and_the_decision_is_cached(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "    allowPrivilegeEscalation: false\n    capabilities: {drop: [ALL]}\n"
                               "    seccomp: {allowed: [RuntimeDefault]}\n")
    runtime = Runtime(tmp_path, policy)
    try:
        for round_ in ("evaluated", "cached decision"):
            bundle, cid = _bundle(tmp_path, "cat", "/proc/self/status", edit=_unconfigured, name=round_)
            created = runtime.create(bundle, cid, debug=True)
            runtime.ok("start", cid)
            assert created.wait() == 0
            st = status_of(created.output())
            assert (st["CapEff"], st["CapBnd"], st["NoNewPrivs"], st["Seccomp"]) == ("0" * 16, "0" * 16, "1", "2")
            assert any(f"node policy node-test ({policy}): {round_}" in line["msg"] for line in runtime.log_lines())
            runtime.ok("delete", cid)
    finally:
        runtime.cleanup()


def _privileged(config: dict[str, Any]) -> None:
    every = [f"CAP_{n}" for n in ("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
                                  "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
                                  "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
                                  "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
                                  "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
                                  "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
                                  "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE")]
    config["process"]["capabilities"] = {k: every for k in ("bounding", "effective", "permitted")}
    for mount in config["mounts"]:
        if mount["type"] == "sysfs":
            mount["options"] = ["nosuid", "noexec", "nodev", "rw"]
    config["linux"]["maskedPaths"] = []
    config["linux"]["readonlyPaths"] = []


def test_privileged_bundle_refused_by_an_enforcing_node_policy(tmp_path: Path) -> None:
    runtime = Runtime(tmp_path, _policy(tmp_path, "    privileged: false\n"))
    try:
        bundle, cid = _bundle(tmp_path, "true", edit=_privileged)
        proc = runtime("create", "--bundle", bundle, cid)
        assert proc.returncode == 1
        errors = [line for line in runtime.log_lines() if line["level"] == "error"]
        assert len(errors) == 1 and errors[0]["msg"].startswith("refused by the node policy node-test")
        assert "[runtime.privileged] privileged containers are not allowed" in errors[0]["msg"]
        assert errors[0]["msg"] in proc.stderr
        assert not (runtime.root / cid).exists()
        assert not any((CGROUP_V1 / c / CGROUP_PARENT / cid).exists() for c in ("memory", "pids", "cpu"))
    finally:
        runtime.cleanup()


def test_privileged_bundle_runs_with_warnings_under_the_default_policy(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "sh", "-c", "grep -E 'CapEff|Seccomp:' /proc/self/status", edit=_privileged)
    proc = runtime("run", "--bundle", bundle, cid)
    assert proc.returncode == 0
    st = status_of(proc.stdout)
    assert st["Seccomp"] == "0" and int(st["CapEff"], 16) & (1 << 21)  # CAP_SYS_ADMIN, as asked
    assert any(line["level"] == "warning" and "[runtime.privileged]" in line["msg"] for line in runtime.log_lines())


def test_rlimits_are_clamped_with_a_warning(runtime: Runtime, tmp_path: Path) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    bundle, cid = _bundle(tmp_path, "sh", "-c", "ulimit -n; ulimit -Hn", edit=lambda c: c["process"].update(
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]))
    proc = runtime("run", "--bundle", bundle, cid)
    assert proc.returncode == 0
    if hard != resource.RLIM_INFINITY and hard < 1048576:
        assert proc.stdout.split() == [str(hard), str(hard)]
        assert any(line["level"] == "warning" and line["msg"].startswith("RLIMIT_NOFILE 1048576:1048576 clamped")
                   for line in runtime.log_lines())
    else:
        assert proc.stdout.split() == ["1048576", "1048576"]


def test_cgroup_limits_user_groups_umask_and_sysctl(runtime: Runtime, tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 32}}
        config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 0o077}
    script = "grep Groups /proc/self/status; umask; cat /proc/sys/net/ipv4/ip_forward; sleep 30"
    bundle, cid = _bundle(tmp_path, "sh", "-c", script, edit=edit)
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    created = runtime.create(bundle, cid)
    runtime.ok("start", cid)
    base = CGROUP_V1 / "memory" / CGROUP_PARENT / cid
    assert (base / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    assert (CGROUP_V1 / "pids" / CGROUP_PARENT / cid / "pids.max").read_text().strip() == "32"
    assert created.pid in [int(p) for p in (base / "cgroup.procs").read_text().split()]
    runtime.ok("kill", cid, "KILL")
    assert created.wait() == 137
    assert created.output().split() == ["Groups:", "10", "20", "0077", "1"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forward  # only the container's
    runtime.ok("delete", cid)
    assert not base.exists()


def test_joining_another_containers_namespace_by_path(runtime: Runtime, tmp_path: Path) -> None:
    first_bundle, first = _bundle(tmp_path, "sleep", "30", name="first",
                                  edit=lambda c: c.update(hostname="alpha"))
    holder = runtime.create(first_bundle, first)
    runtime.ok("start", first)

    def join(config: dict[str, Any]) -> None:
        config.pop("hostname")
        config["linux"]["namespaces"] = [{"type": "mount"}, {"type": "pid"}, {"type": "ipc"},
                                         {"type": "uts", "path": f"/proc/{holder.pid}/ns/uts"},
                                         {"type": "network", "path": f"/proc/{holder.pid}/ns/net"}]
    bundle, cid = _bundle(tmp_path, "hostname", name="second", edit=join)
    proc = runtime("run", "--bundle", bundle, cid)
    assert proc.returncode == 0 and proc.stdout == "alpha\n"
    runtime.ok("delete", "--force", first)
    assert holder.wait() == 137


def test_log_records_what_was_not_applied(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "true", edit=lambda c: c["process"].update(apparmorProfile="docker-default"))
    assert runtime("run", "--bundle", bundle, cid).returncode == 0
    messages = [line["msg"] for line in runtime.log_lines()]
    assert any(re.search(r"apparmorProfile is not applied", m) for m in messages)
    assert any("cgroup filesystem at /sys/fs/cgroup is not mounted" in m for m in messages)


def test_user_namespace_with_uid_maps(runtime: Runtime) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["linux"]["namespaces"].append({"type": "user"})
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    # The container's root (host uid 200000) must be able to reach its root filesystem, as with runc:
    # pytest's own temporary directories are 0700.
    work = Path(tempfile.mkdtemp(prefix="stockade-userns-"))
    try:
        work.chmod(0o755)
        bundle, cid = _bundle(work, "sh", "-c", "id -u; cat /proc/self/uid_map", edit=edit)
        created = runtime.create(bundle, cid)
        host_uid = os.stat(f"/proc/{created.pid}").st_uid
        runtime.ok("start", cid)
        assert created.wait() == 0
        assert created.output().split() == ["0", "0", "200000", "65536"]
        assert host_uid == 200000  # container root is not host root
        runtime.ok("delete", cid)
    finally:
        shutil.rmtree(work)


def test_systemd_cgroup_paths_without_systemd(runtime: Runtime, tmp_path: Path) -> None:
    bundle, cid = _bundle(tmp_path, "sleep", "30")
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["cgroupsPath"] = f"stockadetest.slice:oci:{cid}"
    (bundle / "config.json").write_text(json.dumps(config))
    created = runtime.create(bundle, cid, flags=("--systemd-cgroup",))
    scope = CGROUP_V1 / "memory" / "stockadetest.slice" / f"oci-{cid}.scope"
    try:
        assert created.pid in [int(p) for p in (scope / "cgroup.procs").read_text().split()]
        runtime.ok("delete", cid)
        assert created.wait() == 137 and not scope.exists()
    finally:
        for controller in ("memory", "pids", "cpu"):
            parent = CGROUP_V1 / controller / "stockadetest.slice"
            if parent.is_dir():
                parent.rmdir()


def test_the_light_verbs_load_neither_pathlib_nor_typing(runtime: Runtime, tmp_path: Path) -> None:
    """``start``, ``state``, ``kill`` and ``delete`` run four times per Kubernetes container: their
    modules keep to ``os`` paths and the name ``TYPE_CHECKING`` (pathlib, typing and dataclasses
    are each milliseconds of such a process), and they still do their work."""
    bundle, cid = _bundle(tmp_path, "sleep", "30")
    created = runtime.create(bundle, cid)
    code = ("import json, sys\nfrom stockade.oci_runtime.cli import main\nrc = main(sys.argv[1:])\n"
            "sys.stdout.flush()\nprint(json.dumps([rc, sorted(sys.modules)]))")
    for verb in (("start", cid), ("state", cid), ("kill", cid, "KILL"), ("delete", "--force", cid)):
        proc = subprocess.run([sys.executable, "-c", code, *runtime.argv(*verb)[1:]], capture_output=True,  # nosec
                              text=True, timeout=60, env={**runtime.env(), "PYTHONPATH": str(REPO)})
        rc, modules = json.loads(proc.stdout.splitlines()[-1])
        assert rc == 0, proc.stderr
        assert {"pathlib", "typing", "dataclasses"} & set(modules) == set(), verb
        if verb[0] == "kill":
            created.wait()
    assert not (runtime.root / cid).exists()
