"""Configuration: layering, typed values, sizes, and the paths for root and rootless users."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import config as cfgmod
from engine.config import Paths, load_config, parse_size
from engine.errors import ConfigError


@pytest.mark.parametrize("text,expected", [
    ("512", 512), ("64m", 64 * 1024**2), ("64M", 64 * 1024**2), ("1GiB", 1024**3),
    ("10MB", 10_000_000), ("1.5g", int(1.5 * 1024**3)), (4096, 4096),
])
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "lots", "12 parsecs", "-1", -5])
def test_parse_size_rejects(bad: str | int) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_user_file_overrides_system_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKADE_CONFIG")
    system = tmp_path / "etc"
    system.mkdir()
    (system / "config.toml").write_text(
        '[registries]\ninsecure = ["a:5000"]\ntimeout = 10\n[unpack]\nmax_entries = 5\n')
    monkeypatch.setattr(cfgmod, "SYSTEM_CONFIG_DIR", system)
    user = tmp_path / "xdg" / "xdg_config_home" / "stockade"
    user.mkdir(parents=True)
    (user / "config.toml").write_text('[registries]\ninsecure = ["b:5000"]\n[unpack]\nmax_layer_size = "1GiB"\n')
    c = load_config()
    assert c.registries.insecure == ("b:5000",)
    assert c.registries.timeout == 10.0
    assert c.unpack.max_entries == 5
    assert c.unpack.max_layer_size == 1024**3
    assert c.sources == (str(system / "config.toml"), str(user / "config.toml"))


@pytest.mark.parametrize("text,message", [
    ("[storag]\n", "unknown section [storag]"),
    ("[policy]\nverify_signatures = \"no\"\n", "policy.verify_signatures: expected true or false"),
    ("[registries]\nretries = true\n", "registries.retries: expected an integer, got a boolean"),
    ("[registries]\ninsecure = \"x:1\"\n", "registries.insecure: expected a list of strings"),
    ("[unpack]\nmax_layer_size = \"huge\"\n", "unpack.max_layer_size: invalid size 'huge'"),
    ("storage = 3\n", "[storage] must be a table"),
])
def test_invalid_values_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert str(f) in str(info.value)
    assert message in str(info.value)


def test_rootless_paths_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cfgmod.os, "geteuid", lambda: 1234)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    os.chown(tmp_path / "run", 1234, 1234)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    p = Paths.default()
    assert p.rootless
    assert p.root == tmp_path / "data" / "stockade"
    assert p.runroot == tmp_path / "run" / "stockade"
    assert p.cache == tmp_path / "home" / ".cache" / "stockade"


@pytest.mark.parametrize("runtime_dir", ["missing", "shared", "foreign", "file"])
def test_rootless_runtime_dir_must_be_the_users_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    runtime_dir: str) -> None:
    """An XDG_RUNTIME_DIR that does not exist, that others may write (/tmp), that another user owns,
    or that is no directory is not used: runtime state stays in the user's own data directory, where
    nobody else can make its names first."""
    monkeypatch.setattr(cfgmod.os, "geteuid", lambda: 1234)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    given = tmp_path / "run"
    if runtime_dir == "file":
        given.write_text("")
    elif runtime_dir != "missing":
        given.mkdir(mode=0o700)
        os.chmod(given, 0o1777 if runtime_dir == "shared" else 0o700)
        os.chown(given, 1234 if runtime_dir == "shared" else 4321, 0)
    if runtime_dir == "file":
        os.chown(given, 1234, 0)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(given))
    assert Paths.default().runroot == tmp_path / "data" / "stockade" / "run"


def test_root_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cfgmod.os, "geteuid", lambda: 0)
    p = Paths.default()
    assert (p.root, p.runroot, p.config_dir) == (Path("/var/lib/stockade"), Path("/run/stockade"),
                                                 Path("/etc/stockade"))
    moved = Paths.default(root="/srv/st")
    assert moved.root == Path("/srv/st") and moved.runroot == Path("/srv/st/run")
