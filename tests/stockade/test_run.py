"""``stockade run`` end to end, as root, in real namespaces: every hardening the issue lists is checked
from inside the container (the kernel's view in /proc/self/status), plus Docker's exit codes."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.engine.runtime.support import Engine, engine, probe_rootfs  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts real containers as root")
HARDENED = ("--rm", "--rootfs", "-u", "1000", "--read-only", "--cap-drop", "ALL")


def status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


def test_hardened_container_from_inside(engine: Engine, probe_rootfs: Path) -> None:
    out = engine.ok("run", *HARDENED, probe_rootfs, "sh", "-c", "id -u; cat /proc/self/status")
    uid, _, rest = out.partition("\n")
    st = status(rest)
    assert uid == "1000"
    assert st["CapEff"] == st["CapPrm"] == st["CapBnd"] == st["CapAmb"] == "0000000000000000"
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"


def test_default_root_user_has_dockers_caps(engine: Engine, probe_rootfs: Path) -> None:
    st = status(engine.ok("run", "--rm", "--rootfs", probe_rootfs, "cat", "/proc/self/status"))
    assert st["CapEff"] == "00000000a80425fb" and st["CapInh"] == "0000000000000000"


def test_requested_caps_only(engine: Engine, probe_rootfs: Path) -> None:
    out = engine.ok("run", "--rm", "--rootfs", "-u", "1000", "--cap-drop", "ALL", "--cap-add",
                    "NET_BIND_SERVICE", probe_rootfs, "cat", "/proc/self/status")
    st = status(out)
    assert st["CapEff"] == st["CapBnd"] == "0000000000000400"  # exactly CAP_NET_BIND_SERVICE


def test_read_only_root_gives_erofs_but_tmpfs_is_writable(engine: Engine, probe_rootfs: Path) -> None:
    proc = engine("run", "--rm", "--rootfs", "--read-only", "--tmpfs", "/scratch:size=1m", probe_rootfs,
                  "sh", "-c", "touch /x; echo rc=$?; touch /scratch/y && echo scratch-ok")
    assert "Read-only file system" in proc.stderr and "rc=1" in proc.stdout
    assert "scratch-ok" in proc.stdout


def test_host_is_invisible_and_untouchable(engine: Engine, probe_rootfs: Path) -> None:
    me = os.getpid()
    out = engine("run", "--rm", "--rootfs", probe_rootfs, "sh", "-c",
                 f"ps -o pid | tail -n +2 | wc -l; ls /proc/{me} 2>/dev/null | wc -l;"
                 f"probe mount; probe unshare; probe userns; probe ptrace {me}; probe ptrace 1").stdout
    lines = out.split()
    assert int(lines[0]) <= 4  # sh, ps, tail, wc: no host process
    assert lines[1] == "0"
    assert lines[2:4] == ["errno=1", "errno=1"]  # mount, unshare(CLONE_NEWNS): EPERM
    assert lines[4] == "errno=1"  # unshare(CLONE_NEWUSER)
    assert lines[5] in ("errno=3", "errno=1")  # the host pid does not exist in here
    assert lines[6] != "ok"


def test_seccomp_enosys_for_unknown_syscalls(engine: Engine, probe_rootfs: Path) -> None:
    out = engine.ok("run", "--rm", "--rootfs", probe_rootfs, "sh", "-c",
                    "probe syscall 462; probe syscall 1000; probe syscall 165; probe personality 0xffffffff")
    assert out.split() == ["errno=38", "errno=38", "errno=1", "ok"]


def test_unconfined_seccomp(engine: Engine, probe_rootfs: Path) -> None:
    out = engine.ok("run", "--rm", "--rootfs", "--security-opt", "seccomp=unconfined", probe_rootfs,
                    "sh", "-c", "grep Seccomp: /proc/self/status; probe syscall 1000; true")
    assert out.split() == ["Seccomp:", "0", "errno=38"]


def test_custom_oci_profile(engine: Engine, probe_rootfs: Path, tmp_path: Path) -> None:
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],'
                       ' "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",'
                       ' "errnoRet": 13}]}')
    proc = engine("run", "--rm", "--rootfs", "--security-opt", f"seccomp={profile}", probe_rootfs,
                  "mkdir", "/tmp/x")
    assert proc.returncode == 1 and "Permission denied" in proc.stderr


def test_no_new_privileges_can_be_turned_off(engine: Engine, probe_rootfs: Path) -> None:
    out = engine.ok("run", "--rm", "--rootfs", "--security-opt", "no-new-privileges=false", probe_rootfs,
                    "grep", "-E", "NoNewPrivs|Seccomp:", "/proc/self/status")
    assert status(out)["NoNewPrivs"] == "0" and status(out)["Seccomp"] == "2"


def test_masked_and_read_only_paths(engine: Engine, probe_rootfs: Path) -> None:
    out = engine.ok("run", "--rm", "--rootfs", probe_rootfs, "sh", "-c",
                    "cat /proc/kcore 2>/dev/null | wc -c; cat /proc/keys | wc -c; cat /proc/timer_list | wc -c;"
                    "ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname; echo rc=$?;"
                    "echo x > /proc/sysrq-trigger; echo rc=$?")
    assert out.split() == ["0", "0", "0", "0", "rc=1", "rc=1"]


def test_private_dev_and_mknod_is_useless(engine: Engine, probe_rootfs: Path) -> None:
    out = engine.ok("run", "--rm", "--rootfs", probe_rootfs, "sh", "-c",
                    "ls /dev | tr '\\n' ' '; echo; echo x > /dev/null && echo null-ok;"
                    "mknod /dev/sda b 8 0; head -c1 /dev/sda; echo rc=$?; chmod 000 /dev/null; echo chmod=$?")
    assert out.splitlines()[0].split() == ["fd", "full", "mqueue", "null", "ptmx", "pts",
                                           "random", "shm", "stderr", "stdin", "stdout", "tty",
                                           "urandom", "zero"]
    assert "null-ok" in out and "rc=1" in out and "chmod=1" in out
    assert oct(os.stat("/dev/null").st_mode & 0o777) == "0o666"


def test_identity_env_workdir_hostname(engine: Engine, probe_rootfs: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=1\nOVERRIDDEN=file\n")
    out = engine.ok("run", "--rm", "--rootfs", "-u", "app", "--group-add", "root", "-e", "A=b",
                    "--env-file", env_file, "-e", "OVERRIDDEN=flag", "-w", "/tmp/work", "-h", "box",
                    probe_rootfs, "sh", "-c",
                    "id; echo $A $FROM_FILE $OVERRIDDEN $HOME; pwd; hostname; cat /etc/hostname")
    assert out.splitlines() == ["uid=1000(app) gid=1000(app) groups=0(root)", "b 1 flag /home/app",
                                "/tmp/work", "box", "box"]


def test_entrypoint_and_name(engine: Engine, probe_rootfs: Path) -> None:
    assert engine.ok("run", "--rm", "--rootfs", "--entrypoint", "echo", probe_rootfs, "hi").strip() == "hi"
    engine.ok("run", "--name", "named", "--rootfs", probe_rootfs, "true")
    proc = engine("run", "--name", "named", "--rootfs", probe_rootfs, "true")
    assert proc.returncode == 125 and '"/named" is already in use' in proc.stderr
    doc = engine.inspect("named")
    assert doc["Name"] == "/named" and doc["State"]["Status"] == "exited"


@pytest.mark.parametrize("flags, command, code, message", [
    ([], ["nosuch"], 127, 'exec: "nosuch": executable file not found in $PATH'),
    ([], ["/etc/passwd"], 126, "Permission denied"),
    (["-u", "ghost"], ["true"], 125, "unable to find user ghost"),
    (["--ulimit", "nofile=99999999:99999999"], ["true"], 125, "above this host's"),
    (["--security-opt", "apparmor=profile"], ["true"], 125, "unsupported --security-opt"),
])
def test_exit_codes_as_docker(engine: Engine, probe_rootfs: Path, flags: list[str], command: list[str],
                              code: int, message: str) -> None:
    proc = engine("run", "--rm", "--rootfs", *flags, probe_rootfs, *command)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr and proc.stderr.startswith("stockade: error:")
    assert engine("ps", "-aq").stdout.strip() == ""  # --rm removed it even though it never ran


def test_exit_code_and_signals_propagate(engine: Engine, probe_rootfs: Path) -> None:
    assert engine("run", "--rm", "--rootfs", probe_rootfs, "sh", "-c", "exit 42").returncode == 42
    proc = engine("run", "--rm", "--rootfs", "--init", probe_rootfs, "sh", "-c", "kill -9 $$")
    assert proc.returncode == 137


def test_signals_are_forwarded(engine: Engine, probe_rootfs: Path) -> None:
    cli = [str(a) for a in ("run", "--rm", "--rootfs", "--init", probe_rootfs, "sleep", "60")]
    from tests.support.cli import REPO
    import sys

    env = dict(os.environ, PYTHONPATH=str(REPO), STOCKADE_CONFIG=str(engine.config))
    proc = subprocess.Popen([sys.executable, "-m", "stockade", "--root", str(engine.root), *cli],
                            env=env, stderr=subprocess.PIPE)
    deadline = 100
    while deadline and "sleep" not in engine("ps").stdout:
        deadline -= 1
        import time

        time.sleep(0.05)
    proc.send_signal(15)
    assert proc.wait(timeout=30) == 143  # 128 + SIGTERM, forwarded by --init to sleep


def test_init_reaps_orphans(engine: Engine, probe_rootfs: Path) -> None:
    out = engine.ok("run", "--rm", "--rootfs", "--init", probe_rootfs, "sh", "-c",
                    "(sleep 0.1 &) ; sleep 0.5; ps -o pid,stat,comm | grep -c Z; cat /proc/1/cmdline")
    lines = out.split("\n")
    assert lines[0].strip() == "0"  # no zombie left behind
    assert lines[1].startswith("stockade-init")  # nothing of the host's command line


def test_terminal(engine: Engine, probe_rootfs: Path) -> None:
    cmd = (f"stty cols 91 rows 17; {__import__('sys').executable} -m stockade "
           f"--root {engine.root} run --rm -t --rootfs {probe_rootfs} sh -c 'tty; stty size; exit 3'")
    from tests.support.cli import REPO

    proc = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO),
                                               STOCKADE_CONFIG=str(engine.config)))
    assert proc.returncode == 3
    assert re.search(r"/dev/pts/\d+", proc.stdout) and "17 91" in proc.stdout


def test_interactive_stdin(engine: Engine, probe_rootfs: Path) -> None:
    proc = engine("run", "--rm", "-i", "--rootfs", probe_rootfs, "sh", input="echo from-stdin; exit 4\n")
    assert proc.returncode == 4 and proc.stdout.strip() == "from-stdin"
    proc = engine("run", "--rm", "--rootfs", probe_rootfs, "cat", input="ignored\n")
    assert proc.returncode == 0 and proc.stdout == ""  # without -i, stdin is /dev/null


def test_pids_limit_stops_a_fork_bomb(engine: Engine, probe_rootfs: Path) -> None:
    proc = engine("run", "--rm", "--rootfs", "--pids-limit", "20", probe_rootfs, "sh", "-c",
                  "for i in $(seq 1 60); do sleep 30 & done; wait", timeout=120)
    assert "can't fork" in proc.stderr


def test_memory_hog_is_oom_killed_and_inspect_says_so(engine: Engine, probe_rootfs: Path) -> None:
    proc = engine("run", "--name", "hog", "--rootfs", "-m", "32m", probe_rootfs, "sh", "-c",
                  "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
    assert proc.returncode == 137 and "survived" not in proc.stdout
    doc = engine.inspect("hog")
    assert doc["State"]["OOMKilled"] is True and doc["State"]["ExitCode"] == 137
    assert doc["HostConfig"]["Memory"] == 32 * 1024 * 1024


def test_cpus_limit_is_written(engine: Engine, probe_rootfs: Path) -> None:
    engine.ok("run", "-d", "--name", "cpu", "--rootfs", "--cpus", "0.5", probe_rootfs, "sleep", "30")
    cid = engine.inspect("cpu")["Id"]
    assert Path(f"/sys/fs/cgroup/cpu/stockade/{cid}/cpu.cfs_quota_us").read_text().strip() == "50000"


def test_hostile_symlink_in_rootfs_cannot_redirect_mounts(engine: Engine, probe_rootfs: Path,
                                                          tmp_path: Path) -> None:
    root = tmp_path / "evil"
    subprocess.run(["cp", "-a", str(probe_rootfs), str(root)], check=True)
    victim = tmp_path / "victim"
    victim.write_text("host data\n")
    (root / "etc" / "hostname").unlink(missing_ok=True)
    (root / "etc" / "hostname").symlink_to(f"/../../../../../../..{victim}")
    out = engine.ok("run", "--rm", "--rootfs", "-h", "evil", root, "cat", "/etc/hostname")
    assert out == "evil\n"
    assert victim.read_text() == "host data\n"
    assert (root / str(victim).lstrip("/")).is_file()  # the symlink was followed inside the root


def test_network_none_has_only_loopback(engine: Engine, probe_rootfs: Path) -> None:
    out = engine.ok("run", "--rm", "--rootfs", probe_rootfs, "sh", "-c", "ls /sys/class/net; ip link | grep -c UP")
    assert out.split()[0] == "lo" and len(out.split()) == 2
    host = engine.ok("run", "--rm", "--rootfs", "--network", "host", probe_rootfs, "ls", "/sys/class/net")
    assert sorted(host.split()) == sorted(os.listdir("/sys/class/net"))


def test_privileged_exists_and_drops_the_confinement(engine: Engine, probe_rootfs: Path) -> None:
    st = status(engine.ok("run", "--rm", "--rootfs", "--privileged", probe_rootfs, "cat", "/proc/self/status"))
    ours = status(Path("/proc/self/status").read_text())
    # every capability the host lets root have (this host withholds CAP_SYS_RESOURCE even from root)
    assert st["Seccomp"] == "0" and st["CapEff"] == ours["CapBnd"]
