"""The command-line conventions every verb follows: versions, info, errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from stockade import __version__
from tests.support.cli import stockade


def test_version_flag() -> None:
    r = stockade("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"stockade version {__version__}"


def test_version_json() -> None:
    r = stockade("version", "-o", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["version"] == __version__
    assert data["os"] == "linux"


def test_info_json_reports_store_and_kernel(tmp_path: Path) -> None:
    r = stockade("info", "-o", "json", root=tmp_path / "store")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["root"] == str(tmp_path / "store")
    assert data["runroot"] == str(tmp_path / "store" / "run")
    assert data["storage_driver"] == "overlay"
    assert data["rootless"] is False
    host = data["host"]
    assert host["cgroup_layout"] in ("v1", "v2", "hybrid")
    assert host["cgroup_manager"] in ("v1", "v2", "none")
    assert isinstance(host["user_namespaces"], bool)
    assert isinstance(host["seccomp"], bool)


def test_info_table_names_the_cgroup_manager() -> None:
    r = stockade("info")
    assert r.returncode == 0, r.stderr
    assert "Cgroup manager:" in r.stdout
    assert "Rootless: no" in r.stdout


def test_unknown_verb_is_a_usage_error() -> None:
    r = stockade("frobnicate")
    assert r.returncode == 2
    assert "stockade: error:" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_output_format_is_a_usage_error() -> None:
    r = stockade("info", "-o", "xml")
    assert r.returncode == 2
    assert "invalid choice: 'xml'" in r.stderr


def test_no_verb_prints_help_and_exits_2() -> None:
    r = stockade()
    assert r.returncode == 2
    assert "COMMAND" in r.stderr


def test_config_typo_names_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[registries]\ninsecure_registries = ["x:5000"]\n')
    r = stockade("--config", cfg, "info")
    assert r.returncode == 2
    assert r.stderr.strip() == (f"stockade: error: {cfg}: unknown key registries.insecure_registries "
                                "(known: certs_dirs, insecure, max_parallel_downloads, retries, timeout)")


def test_config_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[storage]\ndriver = "copy"\n[policy]\ndefault = "baseline"\n')
    r = stockade("info", "-o", "json", env={"STOCKADE_CONFIG": str(cfg)})
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["storage_driver"] == "copy"
    assert data["default_policy"] == "baseline"
    assert data["config_files"] == [str(cfg)]


def test_debug_shows_traceback_only_when_asked(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("not toml = = =\n")
    quiet = stockade("--config", cfg, "info")
    loud = stockade("--debug", "--config", cfg, "info")
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr
    assert "invalid TOML" in quiet.stderr
    assert "Traceback" in loud.stderr
