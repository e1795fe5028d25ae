"""``stockade audit`` end to end: the real machine, a fixture host tree, and a real OCI image."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET  # nosec B405 # parsing our own output in a test
from pathlib import Path

import jsonschema
import pytest

from hardening.audit.registry import load_registry
from tests.hardening.audit.fixtures import FIXTURES
from tests.hardening.audit.test_reports import report_schema, sarif_schema
from tests.hardening.audit.world import World, render_toml
from tests.support.cli import stockade

N_CHECKS = len(load_registry().checks)


def _json(proc) -> dict:  # type: ignore[no-untyped-def]
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_real_machine_json(store_root: Path) -> None:
    """The whole audit of this machine: schema-valid, every check accounted for, nothing ERRORs."""
    doc = _json(stockade("audit", "all", "-o", "json", root=store_root))
    jsonschema.Draft202012Validator(report_schema()).validate(doc)
    assert doc["summary"]["checks"] == N_CHECKS
    assert {r["check_id"] for r in doc["results"]} == {c.id for c in load_registry().checks}
    errors = [(r["check_id"], r["message"]) for r in doc["results"] if r["status"] == "ERROR"]
    assert errors == []
    assert doc["summary"]["exit_code"] == (1 if any(doc["summary"]["findings"][s] for s in
                                                    ("critical", "high", "medium", "low")) else 0)


def test_real_machine_sarif_validates(store_root: Path) -> None:
    proc = stockade("audit", "all", "-o", "sarif", root=store_root)
    doc = _json(proc)
    jsonschema.Draft4Validator(sarif_schema()).validate(doc)
    assert all(r["locations"] and r["partialFingerprints"] for r in doc["runs"][0]["results"])


def test_real_machine_junit_parses(store_root: Path) -> None:
    proc = stockade("audit", "all", "-o", "junit", "--fail-on", "none", root=store_root)
    assert proc.returncode == 0, proc.stderr
    root = ET.fromstring(proc.stdout)  # nosec B314 # our own output
    assert int(root.get("tests", "0")) == len(root.findall("./testsuite/testcase")) >= N_CHECKS


@pytest.fixture
def fixture_host(world: World) -> tuple[World, Path]:
    """A fixture host tree to audit with --host-root, with its config as --config."""
    FIXTURES["ENG-003"].fail(world)  # critical: verify_signatures = false
    FIXTURES["HOST-017"].fail(world)  # medium
    config = world.base / "config.toml"
    config.write_text(render_toml(world.config))
    world.write("/proc/self/mountinfo", world.mountinfo())
    return world, config


@pytest.mark.parametrize("fail_on, code", [("critical", 1), ("high", 1), ("info", 1), ("none", 0)])
def test_fail_on_sets_the_exit_code_and_hides_nothing(fixture_host: tuple[World, Path],
                                                      fail_on: str, code: int) -> None:
    world, config = fixture_host
    proc = stockade("--config", config, "audit", "all", "--host-root", world.root,
                    "--fail-on", fail_on, "-o", "json")
    assert proc.returncode == code, proc.stderr
    doc = json.loads(proc.stdout)
    failed = {r["check_id"] for r in doc["results"] if r["status"] == "FAIL"}
    assert {"ENG-003", "HOST-017"} <= failed
    # Not the running host: loaded audit rules cannot be read, so those checks skip and say why.
    hosts = {r["check_id"]: r for r in doc["results"]}
    assert hosts["HOST-010"]["status"] == "SKIP" and "--host-root" in hosts["HOST-010"]["message"]


def test_fail_on_above_the_worst_finding_exits_zero(fixture_host: tuple[World, Path]) -> None:
    world, config = fixture_host
    proc = stockade("--config", config, "audit", "host", "--host-root", world.root,
                    "--fail-on", "high")
    assert proc.returncode == 0, proc.stderr
    assert "HOST-017" in proc.stdout


def test_ignore_file_and_expiry_warning(fixture_host: tuple[World, Path], tmp_path: Path) -> None:
    world, config = fixture_host
    ignore = tmp_path / "audit-ignore.toml"
    ignore.write_text('[[ignore]]\ncheck = "ENG-003"\nreason = "signing rolls out in Q3"\n'
                      'expires = 2099-01-01\n\n[[ignore]]\ncheck = "HOST-017"\nreason = "old"\n'
                      'expires = 2001-01-01\n')
    proc = stockade("--config", config, "audit", "all", "--host-root", world.root, "--fail-on",
                    "critical", "--ignore-file", ignore, "-o", "sarif")
    assert proc.returncode == 0, proc.stderr  # the critical finding is accepted until 2099
    assert "HOST-017 expired on 2001-01-01" in proc.stderr
    results = json.loads(proc.stdout)["runs"][0]["results"]
    eng = next(r for r in results if r["ruleId"] == "ENG-003")
    assert eng["suppressions"][0]["justification"].startswith("signing rolls out in Q3")


@pytest.mark.parametrize("args, message", [
    (["--check", "NOPE"], "no check ID starts with 'NOPE'"),
    (["--skip", "HOST,ZZZ"], "no check ID starts with 'ZZZ'"),
    (["--image", "oci:/nonexistent/layout"], "is not an OCI image layout"),
    (["--fail-on", "urgent"], "invalid choice"),
])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    proc = stockade("audit", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stderr.count("stockade: error:") == 1


def test_bad_ignore_file_exits_2(tmp_path: Path) -> None:
    ignore = tmp_path / "ignore.toml"
    ignore.write_text('[[ignore]]\ncheck = "CTR-001"\nexpires = 2030-01-01\n')
    proc = stockade("audit", "--ignore-file", ignore)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"stockade: error: {ignore}: ignore entry 1: reason is required"


def test_list_checks(tmp_path: Path) -> None:
    proc = stockade("audit", "--list", "--profile", "level1", "--check", "CTR", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows and all(r["id"].startswith("CTR-") and r["level"] == 1 for r in rows)


def test_image_from_an_oci_layout(busybox_layout: Path) -> None:
    """A real image built by umoci, read from its layout: layers digest-checked, files listed."""
    proc = stockade("audit", "--image", f"oci:{busybox_layout}:busybox", "-o", "json",
                    "--fail-on", "none")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["scope"] == "images"
    by_id = {r["check_id"]: r for r in doc["results"]}
    assert by_id["IMG-001"]["status"] == "PASS"  # umoci config user 1000:1000
    assert by_id["IMG-002"]["status"] == "FAIL"  # no HEALTHCHECK
    assert by_id["IMG-014"]["status"] == "PASS"  # /tmp is 1777
    assert by_id["IMG-011"]["status"] == "PASS"  # one uid 0, no shadow file
    assert by_id["IMG-009"]["status"] == "SKIP"
    assert all(r["target"]["name"] == f"oci:{busybox_layout}:busybox" for r in doc["results"])
    assert not [r for r in doc["results"] if r["status"] == "ERROR"]


def test_layout_layers_are_bounded_by_the_configured_unpack_limits(busybox_layout: Path,
                                                                   tmp_path: Path) -> None:
    """The audit reads an untrusted layout with the user's [unpack] limits, not the defaults."""
    config = tmp_path / "config.toml"
    config.write_text('[unpack]\nmax_layer_size = "64k"\n')
    proc = stockade("--config", config, "audit", "--image", f"oci:{busybox_layout}:busybox")
    assert proc.returncode == 2
    assert "stockade: error: --image oci:" in proc.stderr
    assert "unpack.max_layer_size" in proc.stderr


def test_tampered_layout_layer_is_refused(busybox_layout: Path, tmp_path: Path) -> None:
    copy = tmp_path / "oci"
    shutil.copytree(busybox_layout, copy)
    index = json.loads((copy / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((copy / "blobs/sha256" / manifest_digest).read_text())
    layer = copy / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(layer.read_bytes())
    data[-1] ^= 0xFF
    layer.write_bytes(bytes(data))
    proc = stockade("audit", "--image", f"oci:{copy}:busybox")
    assert proc.returncode == 2
    assert manifest["layers"][0]["digest"] in proc.stderr


def test_images_in_the_real_store(registry, busybox_layout: Path, store_root: Path,  # type: ignore[no-untyped-def]
                                  tmp_path: Path) -> None:
    """Pulled by the engine into a real store, then graded from the store's config and layer dirs."""
    from tests.support.images import skopeo_push

    ref = f"{registry.host}/audit/busybox:1.0"
    skopeo_push(busybox_layout, "busybox", ref)
    config = tmp_path / "config.toml"
    config.write_text(f'[registries]\ninsecure = ["{registry.host}"]\n')
    pull = stockade("--config", config, "pull", ref, root=store_root)
    assert pull.returncode == 0, pull.stderr
    for args in (["images"], ["--image", ref]):
        doc = _json(stockade("--config", config, "audit", *args, "-o", "json", root=store_root))
        results = [r for r in doc["results"] if r["domain"] == "images"]
        assert {r["target"]["name"] for r in results} == {ref}
        by_id = {r["check_id"]: r for r in results}
        assert by_id["IMG-001"]["status"] == "PASS" and by_id["IMG-002"]["status"] == "FAIL"
        assert by_id["IMG-011"]["status"] == "PASS" and by_id["IMG-014"]["status"] == "PASS"
        assert by_id["IMG-008"]["status"] == "PASS"  # tagged 1.0
        assert not [r for r in results if r["status"] == "ERROR"], results


def test_unknown_store_image_exits_2(store_root: Path) -> None:
    proc = stockade("audit", "--image", "registry.example/nothing:1", root=store_root)
    assert proc.returncode == 2, proc.stderr
    assert "registry.example/nothing:1" in proc.stderr
