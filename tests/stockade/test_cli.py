"""The command-line conventions every verb follows: versions, info, errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 # runs our own CLI with an argument list
import sys
from pathlib import Path

import pytest

from stockade import __version__
from tests.support.cli import REPO, stockade


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


def _verbs_by_module() -> dict[str, str]:
    """Each top-level verb and the module that registers it, read from the full tree's registration."""
    import argparse
    import importlib

    from stockade.cli import COMMAND_MODULES

    owners: dict[str, str] = {}
    for name in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).register(sub)
        for verb in sub.choices:
            assert verb not in owners, f"{verb} registered by {owners[verb]} and {name}"
            owners[verb] = name
    return owners


def test_verb_table_matches_the_full_tree() -> None:
    """The CLI builds one module's parsers by ``VERB_MODULES``; it must name exactly the verbs each
    module registers, or a verb would parse differently (or not at all) outside ``--help``."""
    from stockade.cli import VERB_MODULES

    assert VERB_MODULES == _verbs_by_module()


@pytest.mark.parametrize("module", sorted(set(_verbs_by_module().values())))
def test_a_verb_builds_only_its_own_module(module: str) -> None:
    """``stockade VERB …`` imports no verb module beyond the one owning VERB and what that module
    itself imports, and the verb's own help still works (``VERB --help`` exits 0 through its parser)."""
    verb = next(v for v, m in _verbs_by_module().items() if m == module)
    code = ("import importlib, json, sys\nfrom stockade.cli import main\n"
            "def ours():\n    return sorted(m for m in sys.modules if m.startswith('stockade.commands.'))\n"
            f"importlib.import_module({module!r})\nalone = ours()\n"
            f"try:\n    main([{verb!r}, '--help'])\nexcept SystemExit as exc:\n    rc = exc.code\n"
            "print(json.dumps([rc, alone, ours()]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,  # nosec
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    rc, alone, after = json.loads(proc.stdout.splitlines()[-1])
    assert (rc, after) == (0, alone)
    assert f"usage: stockade {verb}" in proc.stdout


def test_help_lists_every_verb() -> None:
    from stockade.cli import VERB_MODULES

    r = stockade("--help")
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split("COMMAND", 1)[1]
    assert [v for v in VERB_MODULES if f"\n    {v} " not in listed and f"\n    {v}\n" not in listed] == []


def test_unknown_verb_names_the_valid_choices() -> None:
    r = stockade("frobnicate")
    assert r.returncode == 2
    assert "invalid choice: 'frobnicate'" in r.stderr and "'run'" in r.stderr


def test_version_flag_before_a_verb_wins() -> None:
    r = stockade("--version", "run", "--bogus")
    assert (r.returncode, r.stdout.strip()) == (0, f"stockade version {__version__}")
