"""The audit of real containers the engine started (``stockade run -d``), running and stopped."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Iterator

import jsonschema
import pytest

from tests.hardening.audit.test_reports import report_schema, sarif_schema
from tests.support.cli import stockade

IMAGE = "localhost/audit-busybox:1"
HARDENED = ["--read-only", "-m", "64m", "--pids-limit", "64", "--cpus", "0.5", "--cap-drop", "ALL"]
LOOSE = ["--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined", "--network", "host"]


@pytest.fixture
def containers(busybox_layout: Path, store_root: Path, tmp_path: Path) -> Iterator[Path]:
    """Two running containers (one hardened, one loose) and one stopped, removed afterwards."""
    archive = tmp_path / "busybox.tar"
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(busybox_layout.iterdir()):
            tar.add(entry, arcname=entry.name)
    proc = stockade("load", "-i", archive, root=store_root)
    assert proc.returncode == 0, proc.stderr
    image_id = proc.stdout.strip().split()[-1]  # "Loaded image ID: sha256:…"
    assert stockade("tag", image_id, IMAGE, root=store_root).returncode == 0
    names = []
    try:
        for name, flags, detach in (("hardened", HARDENED, True), ("loose", LOOSE, True),
                                    ("stopped", [], False)):
            run = stockade("run", *(["-d"] if detach else []), "--name", name, *flags, IMAGE,
                           *(["sleep", "300"] if detach else ["true"]), root=store_root)
            assert run.returncode == 0, run.stderr
            names.append(name)
        yield store_root
    finally:
        if names:
            stockade("rm", "-f", *names, root=store_root)


def test_audit_of_real_containers(containers: Path) -> None:
    proc = stockade("audit", "containers", "-o", "json", "--fail-on", "critical", root=containers)
    doc = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(report_schema()).validate(doc)
    assert proc.returncode == 1, proc.stderr  # CTR-003: SYS_ADMIN added to "loose"
    status = {(r["target"]["name"], r["check_id"]): r["status"] for r in doc["results"]}
    assert {name for name, _ in status} == {"hardened", "loose", "stopped"}
    for check in ("CTR-015", "CTR-016", "CTR-017", "CTR-018", "CTR-028", "CTR-003", "CTR-012",
                  "CTR-013", "CTR-023", "CTR-024"):
        assert status[("hardened", check)] == "PASS", check
    for check in ("CTR-003", "CTR-012", "CTR-007", "CTR-015"):
        assert status[("loose", check)] == "FAIL", check
    assert status[("stopped", "CTR-023")] == "SKIP"  # not running: nothing to look inside
    assert not [r for r in doc["results"] if r["status"] == "ERROR"]


def test_sarif_of_a_real_host_with_real_containers(containers: Path) -> None:
    proc = stockade("audit", "all", "-o", "sarif", "--fail-on", "none", root=containers)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.Draft4Validator(sarif_schema()).validate(doc)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in doc["runs"][0]["results"]}
    assert "stockade/container/loose/config" in uris
