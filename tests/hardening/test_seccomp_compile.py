"""The compiled program decides what Docker's profile says, plus the ENOSYS stub; the cache returns
the same bytes for the same inputs and never imports libseccomp's bindings on a hit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hardening.capabilities import DEFAULT
from hardening.seccomp import cache_key, compiled_filter, libseccomp_version, profile_path
from hardening.seccomp.compile import compile_profile, enosys_stub
from hardening.seccomp.profile import DEFAULT_PROFILE, ProfileError, expand, load
from tests.engine.runtime.bpf import AUDIT_ARCH_I386, RET_ALLOW, RET_ERRNO, run, seccomp_data

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64's")
EPERM, ENOSYS = RET_ERRNO | 1, RET_ERRNO | 38
UNKNOWN_TO_LIBSECCOMP_2_5 = {"getxattrat", "listmount", "listxattrat", "mseal", "removexattrat",
                             "riscv_hwprobe", "setxattrat", "statmount", "uretprobe"}


@pytest.fixture(scope="module")
def compiled():
    _, doc = load(DEFAULT_PROFILE)
    return compile_profile(expand(doc, list(DEFAULT)))


def test_program_shape(compiled) -> None:
    assert len(compiled.program) % 8 == 0
    assert compiled.highest["SCMP_ARCH_X86_64"] >= 456
    # Names newer than libseccomp are skipped (and stubbed), never silently mistranslated.
    if libseccomp_version().startswith("2.5."):
        assert set(compiled.unknown) == UNKNOWN_TO_LIBSECCOMP_2_5
    else:
        assert set(compiled.unknown) <= UNKNOWN_TO_LIBSECCOMP_2_5


@pytest.mark.parametrize("nr, args, expected", [
    (110, (), RET_ALLOW),  # getppid
    (165, (), EPERM),  # mount
    (272, (), EPERM),  # unshare
    (101, (), RET_ALLOW),  # ptrace (kernel >= 4.8)
    (435, (), ENOSYS),  # clone3: the profile's own errnoRet 38
    (462, (), ENOSYS),  # mseal: unknown to libseccomp 2.5 -> the stub
    (1000, (), ENOSYS),  # no such syscall at all
    (135, (0xFFFFFFFF,), RET_ALLOW),  # personality query
    (135, (1,), EPERM),  # personality change
    (56, (0x11,), RET_ALLOW),  # clone (fork)
    (56, (0x10000000,), EPERM),  # clone(CLONE_NEWUSER)
    (41, (2,), RET_ALLOW),  # socket(AF_INET)
    (41, (38,), EPERM),  # socket(AF_ALG)
    (41, (40,), EPERM),  # socket(AF_VSOCK)
])
def test_decisions(compiled, nr: int, args: tuple[int, ...], expected: int) -> None:
    assert run(compiled.program, seccomp_data(nr, args=args)) == expected


def test_other_architectures(compiled) -> None:
    assert run(compiled.program, seccomp_data(20, AUDIT_ARCH_I386)) == RET_ALLOW  # i386 getpid
    assert run(compiled.program, seccomp_data(999, AUDIT_ARCH_I386)) == ENOSYS
    assert run(compiled.program, seccomp_data(0x40000000 | 39)) == RET_ALLOW  # x32 getpid
    assert run(compiled.program, seccomp_data(39, 0x1234)) != RET_ALLOW  # unknown arch: killed


def test_stub_alone() -> None:
    stub = enosys_stub([(0xC000003E, 100, True)])
    tail = bytes.fromhex("06000000" "0000ff7f")  # ret ALLOW
    program = stub + tail
    assert run(program, seccomp_data(101)) == ENOSYS
    assert run(program, seccomp_data(100)) == RET_ALLOW
    assert run(program, seccomp_data(0x40000000 | 200)) == RET_ALLOW  # x32 goes to the filter
    assert run(program, seccomp_data(5000, AUDIT_ARCH_I386)) == RET_ALLOW  # not stubbed


def test_no_stub_when_default_allows() -> None:
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    program = compile_profile(oci).program
    assert run(program, seccomp_data(83)) == RET_ERRNO | 13  # mkdir
    assert run(program, seccomp_data(1000)) == RET_ALLOW


def test_repeated_argument_index_is_an_or() -> None:
    oci = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                                  {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
    program = compile_profile(oci).program
    assert run(program, seccomp_data(135, args=(0,))) == RET_ALLOW
    assert run(program, seccomp_data(135, args=(8,))) == RET_ALLOW
    assert run(program, seccomp_data(135, args=(4,))) == EPERM


def test_cache_hit_and_key(tmp_path: Path) -> None:
    first = compiled_filter("default", list(DEFAULT), tmp_path)
    assert first is not None and first.parent == tmp_path
    assert compiled_filter(None, list(DEFAULT), tmp_path) == first
    other = compiled_filter("default", [*DEFAULT, "CAP_SYS_ADMIN"], tmp_path)
    assert other != first
    assert compiled_filter("unconfined", list(DEFAULT), tmp_path) is None
    raw = DEFAULT_PROFILE.read_bytes()
    assert cache_key(raw, ["CAP_KILL", "CAP_CHOWN"]) == cache_key(raw, ["CAP_CHOWN", "CAP_KILL"])
    assert cache_key(raw + b" ", ["CAP_KILL"]) != cache_key(raw, ["CAP_KILL"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files


@pytest.mark.parametrize("plant", ["foreign owner", "world-writable", "symlink"])
def test_a_program_someone_else_could_have_written_is_compiled_over(tmp_path: Path, plant: str) -> None:
    """The cached program is the container's whole filter: one planted at its name (an allow-all
    program, here an empty file) must never be loaded."""
    good = compiled_filter("default", list(DEFAULT), tmp_path / "good")
    assert good is not None
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    planted = cache / good.name
    if plant == "symlink":
        (tmp_path / "elsewhere.bpf").write_bytes(b"")
        planted.symlink_to(tmp_path / "elsewhere.bpf")
    else:
        planted.write_bytes(b"")
        if plant == "foreign owner":
            os.chown(planted, 65534, 65534)
        else:
            planted.chmod(0o666)
    found = compiled_filter("default", list(DEFAULT), cache)
    assert found == planted and not found.is_symlink()
    assert found.read_bytes() == good.read_bytes() and found.stat().st_uid == os.geteuid()
    if plant == "symlink":
        assert (tmp_path / "elsewhere.bpf").read_bytes() == b""  # replaced the link, not its target


def test_a_cache_directory_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "theirs"
    cache.mkdir()
    os.chown(cache, 65534, 65534)
    with pytest.raises(ProfileError, match="is not this user's own directory"):
        compiled_filter("default", list(DEFAULT), cache)
    assert list(cache.iterdir()) == []


def test_cache_hit_does_not_load_libseccomp_bindings(tmp_path: Path) -> None:
    compiled_filter("default", list(DEFAULT), tmp_path)
    code = ("import sys; from pathlib import Path; from hardening.seccomp import compiled_filter;"
            f"from hardening.capabilities import DEFAULT; compiled_filter('default', list(DEFAULT), Path({str(tmp_path)!r}));"
            "print('pyseccomp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_profile_names() -> None:
    assert profile_path("default") == DEFAULT_PROFILE
    assert profile_path("unconfined") is None
    assert profile_path("/x/y.json") == Path("/x/y.json")
