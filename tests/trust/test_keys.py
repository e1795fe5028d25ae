"""Key generation, the key formats of cosign/skopeo/openssl, and the distinct key-file errors."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec

from trust import keys
from trust.errors import KeyFileError, TruncatedKeyError, UnsupportedKeyError, WrongPasswordError

DATA = Path(__file__).parent / "data" / "sigstore-rs-keys"


def _never() -> bytes:
    raise AssertionError("the password must not be asked for")


@pytest.mark.parametrize("kind", keys.KEY_KINDS)
@pytest.mark.parametrize("key_format", keys.KEY_FORMATS)
def test_generate_write_load_roundtrip(tmp_path: Path, kind: str, key_format: str) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    key = keys.generate(kind)
    key_path, pub_path = keys.write_key_pair(key, b"s3cret", tmp_path / "signer", key_format=key_format)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub_path.stat().st_mode) == 0o644
    text = key_path.read_text()
    assert ("ENCRYPTED SIGSTORE PRIVATE KEY" if key_format == "cosign" else "ENCRYPTED PRIVATE KEY") in text
    loaded = keys.load_private_key(key_path, lambda: b"s3cret")
    public = keys.load_public_key(pub_path)
    assert loaded.public.key_id == public.key_id == key.public.key_id
    signature = loaded.sign(b"payload")
    assert public.verify(signature, b"payload")
    assert not public.verify(signature, b"payloaD")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signer.key", "signer.pub"]  # no temp files left


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    keys.write_key_pair(keys.generate(), b"pw", tmp_path / "k")
    before = (tmp_path / "k.key").read_bytes()
    with pytest.raises(KeyFileError, match=r"k\.key already exists \(use --force"):
        keys.write_key_pair(keys.generate(), b"pw", tmp_path / "k")
    assert (tmp_path / "k.key").read_bytes() == before
    keys.write_key_pair(keys.generate(), b"pw", tmp_path / "k", force=True)
    assert (tmp_path / "k.key").read_bytes() != before


def test_empty_password_is_refused_for_new_keys(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="empty password"):
        keys.write_key_pair(keys.generate(), b"", tmp_path / "k")
    assert not list(tmp_path.glob("k*")) and not list(tmp_path.glob(".k*"))


@pytest.mark.parametrize("key_format", keys.KEY_FORMATS)
def test_wrong_password(tmp_path: Path, key_format: str) -> None:
    key_path, _ = keys.write_key_pair(keys.generate(), b"right", tmp_path / "k", key_format=key_format)
    with pytest.raises(WrongPasswordError, match=f"wrong password for private key {re.escape(str(key_path))}"):
        keys.load_private_key(key_path, lambda: b"wrong")


@pytest.mark.parametrize("key_format", keys.KEY_FORMATS)
def test_truncated_files(tmp_path: Path, key_format: str) -> None:
    key_path, _ = keys.write_key_pair(keys.generate(), b"pw", tmp_path / "k", key_format=key_format)
    lines = key_path.read_text().splitlines()
    # cut after a few body lines: no END line
    cut = tmp_path / "cut.key"
    cut.write_text("\n".join(lines[:3]) + "\n")
    with pytest.raises(TruncatedKeyError, match="no END line"):
        keys.load_private_key(cut, lambda: b"pw")
    # the END line survives but the body lost its tail (a copy-paste that dropped lines)
    short = tmp_path / "short.key"
    short.write_text("\n".join([lines[0], *lines[1:3], lines[-1]]) + "\n")
    with pytest.raises(TruncatedKeyError, match="truncated"):
        keys.load_private_key(short, lambda: b"pw")


def test_truncated_public_key(tmp_path: Path) -> None:
    _, pub = keys.write_key_pair(keys.generate(), b"pw", tmp_path / "k")
    lines = pub.read_text().splitlines()
    (tmp_path / "cut.pub").write_text("\n".join([lines[0], lines[1], lines[-1]]) + "\n")
    with pytest.raises(TruncatedKeyError):
        keys.load_public_key(tmp_path / "cut.pub")


def test_unsupported_curve(tmp_path: Path) -> None:
    k1 = ec.generate_private_key(ec.SECP256K1())
    path = tmp_path / "k1.key"
    path.write_bytes(k1.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(UnsupportedKeyError, match="unsupported elliptic curve secp256k1"):
        keys.load_private_key(path, lambda: b"pw")
    pub = tmp_path / "k1.pub"
    pub.write_bytes(k1.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(UnsupportedKeyError, match="secp256k1"):
        keys.load_public_key(pub)


def test_unsupported_algorithm(tmp_path: Path) -> None:
    key = dsa.generate_private_key(2048)
    path = tmp_path / "dsa.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with pytest.raises(UnsupportedKeyError, match="unsupported key algorithm"):
        keys.load_private_key(path, _never)


def test_three_errors_are_distinct_types() -> None:
    assert len({WrongPasswordError, TruncatedKeyError, UnsupportedKeyError}) == 3
    for cls in (WrongPasswordError, TruncatedKeyError, UnsupportedKeyError):
        assert issubclass(cls, KeyFileError)
        assert not any(issubclass(cls, other) for other in
                       {WrongPasswordError, TruncatedKeyError, UnsupportedKeyError} - {cls})


@pytest.mark.parametrize(("name", "password", "key_type"), [
    ("cosign_generated_encrypted_empty_private.key", b"", ec.EllipticCurvePrivateKey),
    ("ecdsa_encrypted_private.key", b"123", ec.EllipticCurvePrivateKey),
    ("ed25519_encrypted_private.key", b"123", keys.ed25519.Ed25519PrivateKey),
])
def test_keys_written_by_sigstore_tools(name: str, password: bytes, key_type: type) -> None:
    key = keys.load_private_key(DATA / name, lambda: password)
    assert isinstance(key.key, key_type)
    assert key.public.verify(key.sign(b"x"), b"x")


def test_sigstore_tool_key_wrong_password() -> None:
    with pytest.raises(WrongPasswordError, match="or the key file was modified"):
        keys.load_private_key(DATA / "ecdsa_encrypted_private.key", lambda: b"124")


def _cosign_doc(path: Path) -> dict:
    body = "".join(path.read_text().splitlines()[1:-1])
    return json.loads(base64.b64decode(body))


def _write_cosign(path: Path, doc: dict) -> None:
    body = base64.b64encode(json.dumps(doc).encode()).decode()
    path.write_text(f"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n{body}\n"
                    "-----END ENCRYPTED COSIGN PRIVATE KEY-----\n")


def test_cosign_key_with_huge_scrypt_cost_is_refused_before_deriving(tmp_path: Path) -> None:
    doc = _cosign_doc(DATA / "ecdsa_encrypted_private.key")
    doc["kdf"]["params"]["N"] = 2 ** 30
    _write_cosign(tmp_path / "k", doc)
    with pytest.raises(UnsupportedKeyError, match="unsupported scrypt parameters"):
        keys.load_private_key(tmp_path / "k", _never)


def test_cosign_key_with_other_cipher_is_refused(tmp_path: Path) -> None:
    doc = _cosign_doc(DATA / "ecdsa_encrypted_private.key")
    doc["cipher"]["name"] = "aes-gcm"
    _write_cosign(tmp_path / "k", doc)
    with pytest.raises(UnsupportedKeyError, match="unsupported cipher"):
        keys.load_private_key(tmp_path / "k", _never)


def test_cosign_key_with_cut_ciphertext(tmp_path: Path) -> None:
    doc = _cosign_doc(DATA / "ecdsa_encrypted_private.key")
    doc["ciphertext"] = doc["ciphertext"][:12]
    _write_cosign(tmp_path / "k", doc)
    with pytest.raises(TruncatedKeyError):
        keys.load_private_key(tmp_path / "k", lambda: b"123")


def test_cosign_key_json_cut_short(tmp_path: Path) -> None:
    raw = json.dumps(_cosign_doc(DATA / "ecdsa_encrypted_private.key")).encode()[:-40]
    (tmp_path / "k").write_text("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"
                                f"{base64.b64encode(raw).decode()}\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n")
    with pytest.raises(TruncatedKeyError):
        keys.load_private_key(tmp_path / "k", lambda: b"123")


def test_clear_pkcs8_needs_no_password(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    assert keys.load_private_key(tmp_path / "k", _never).public.verify(
        key.sign(b"m", ec.ECDSA(keys.hashes.SHA256())), b"m")


def test_public_key_where_private_expected(tmp_path: Path) -> None:
    _, pub = keys.write_key_pair(keys.generate(), b"pw", tmp_path / "k")
    with pytest.raises(KeyFileError, match="this is a public key"):
        keys.load_private_key(pub, _never)


def test_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        keys.load_private_key(tmp_path / "nope", _never)
    (tmp_path / "junk").write_text("hello\n")
    with pytest.raises(KeyFileError, match="no PEM block"):
        keys.load_public_key(tmp_path / "junk")


def test_key_id_and_hint_are_the_rfc6962_hash(tmp_path: Path) -> None:
    key = keys.generate().public
    digest = hashlib.sha256(key.der).digest()
    assert key.key_id == digest.hex()
    assert key.hint == base64.b64encode(digest).decode()
    assert key.algorithm == "PKIX_ECDSA_P256_SHA_256"
    assert keys.generate("ed25519").public.algorithm == "PKIX_ED25519"


def test_prehashed_verification_matches_plain(tmp_path: Path) -> None:
    data = b"artifact" * 1000
    for kind in keys.KEY_KINDS:
        key = keys.generate(kind)
        sig = key.sign(data)
        assert key.public.verify_digest(sig, hashlib.sha256(data).digest(), lambda: data)
        assert not key.public.verify_digest(sig, hashlib.sha256(data + b"x").digest(), lambda: data + b"x")
