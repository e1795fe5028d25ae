"""``stockade key generate``, ``sign-blob`` and ``verify-blob`` through the real command line."""

from __future__ import annotations

import json
import os
import stat
import subprocess  # nosec B404 # runs our own CLI with an argument list
import sys
from pathlib import Path

import pytest

from tests.support.cli import stockade

PW = {"STOCKADE_PASSWORD": "correct horse"}


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    r = stockade("key", "generate", "--output-key-prefix", str(tmp_path / "signer"), "-o", "json", env=PW)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    return Path(doc["private_key"]), Path(doc["public_key"])


def test_key_generate(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "BEGIN ENCRYPTED PRIVATE KEY" in key.read_text()
    assert "BEGIN PUBLIC KEY" in pub.read_text()
    again = stockade("key", "generate", "--output-key-prefix", str(tmp_path / "signer"), env=PW)
    assert again.returncode == 1 and "already exists (use --force" in again.stderr


def test_key_generate_cosign_format_and_ed25519(tmp_path: Path) -> None:
    r = stockade("key", "generate", "--type", "ed25519", "--format", "cosign",
                 "--output-key-prefix", str(tmp_path / "c"), env=PW)
    assert r.returncode == 0, r.stderr
    assert "BEGIN ENCRYPTED SIGSTORE PRIVATE KEY" in (tmp_path / "c.key").read_text()
    assert "Key id: " in r.stdout


def test_key_generate_without_password_source(tmp_path: Path) -> None:
    r = stockade("key", "generate", "--output-key-prefix", str(tmp_path / "k"), env={"STOCKADE_PASSWORD": ""})
    assert r.returncode == 1 and "empty password" in r.stderr
    # no $STOCKADE_PASSWORD and no terminal: a usage error, and no file written
    env = {k: v for k, v in os.environ.items() if k != "STOCKADE_PASSWORD"}
    proc = subprocess.run([sys.executable, "-m", "stockade", "key", "generate", "--output-key-prefix",
                           str(tmp_path / "k")], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2 and "set STOCKADE_PASSWORD" in proc.stderr
    assert not list(tmp_path.glob("k.*"))


def _sign(tmp_path: Path, key: Path, content: bytes = b"release 1.0\n") -> tuple[Path, Path]:
    artifact = tmp_path / "release.txt"
    artifact.write_bytes(content)
    bundle = tmp_path / "release.txt.sigstore.json"
    r = stockade("sign-blob", "--key", key, "--bundle", bundle, artifact, env=PW)
    assert r.returncode == 0, r.stderr
    return artifact, bundle


def test_sign_blob_then_verify_blob(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    artifact, bundle = _sign(tmp_path, key)
    doc = json.loads(bundle.read_text())
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert "publicKey" in doc["verificationMaterial"] and "certificate" not in doc["verificationMaterial"]
    r = stockade("verify-blob", artifact, "--bundle", bundle, "--key", pub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("Verified OK")
    r = stockade("verify-blob", artifact, "--bundle", bundle, "--key", pub, "-o", "json")
    out = json.loads(r.stdout)
    assert out["verified"] is True and out["signature"]["kind"] == "bundle-keyed"
    assert out["signature"]["found"] == {"via": "file", "location": str(bundle)}


def test_verify_blob_failures_exit_1_with_reasons(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    artifact, bundle = _sign(tmp_path, key)
    other = stockade("key", "generate", "--output-key-prefix", str(tmp_path / "other"), env=PW)
    assert other.returncode == 0
    r = stockade("verify-blob", artifact, "--bundle", bundle, "--key", tmp_path / "other.pub", "-o", "json")
    assert r.returncode == 1
    assert "does not verify with the given key" in json.loads(r.stdout)["signature"]["reasons"][0]
    artifact.write_bytes(b"release 1.1\n")
    r = stockade("verify-blob", artifact, "--bundle", bundle, "--key", pub)
    assert r.returncode == 1 and "the bundle signs sha256:" in r.stdout
    bundle.write_text("{not json")
    r = stockade("verify-blob", artifact, "--bundle", bundle, "--key", pub)
    assert r.returncode == 1 and "not valid JSON" in r.stdout


def test_verify_blob_usage_errors_exit_2(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    artifact, bundle = _sign(tmp_path, key)
    r = stockade("verify-blob", artifact, "--bundle", bundle)
    assert r.returncode == 2 and "nothing to verify against" in r.stderr
    r = stockade("verify-blob", artifact, "--bundle", bundle, "--certificate-identity", "me@example.com")
    assert r.returncode == 2 and "--certificate-oidc-issuer" in r.stderr
    r = stockade("verify-blob", artifact, "--bundle", bundle, "--certificate-identity-regexp", "(",
                 "--certificate-oidc-issuer", "x")
    assert r.returncode == 2 and "not a valid regular expression" in r.stderr


def test_sign_blob_with_wrong_password(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, _ = keypair
    (tmp_path / "f").write_text("x")
    r = stockade("sign-blob", "--key", key, "--bundle", tmp_path / "f.bundle", tmp_path / "f",
                 env={"STOCKADE_PASSWORD": "wrong"})
    assert r.returncode == 1 and r.stderr.strip() == f"stockade: error: wrong password for private key {key}"
    assert not (tmp_path / "f.bundle").exists()


def test_sign_blob_with_a_cosign_key(tmp_path: Path) -> None:
    data = Path(__file__).parent / "data" / "sigstore-rs-keys" / "ecdsa_encrypted_private.key"
    (tmp_path / "f").write_text("x")
    r = stockade("sign-blob", "--key", data, "--bundle", tmp_path / "f.bundle", tmp_path / "f", "-o", "json",
                 env={"STOCKADE_PASSWORD": "123"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["key_id"] == "00208863d9785226df9ad68ceb2ad5b43f1f5ddd686147f25116ee088726eb6d"
