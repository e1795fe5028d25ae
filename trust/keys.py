"""Signing keys: generation, the file formats we read and write, key ids, sign and verify.

Formats read:

* PKCS#8 PEM, encrypted (``ENCRYPTED PRIVATE KEY``, what ``stockade key generate`` writes) or clear
  (``PRIVATE KEY``, ``EC PRIVATE KEY``, as openssl writes);
* cosign's and skopeo's ``ENCRYPTED SIGSTORE PRIVATE KEY`` / ``ENCRYPTED COSIGN PRIVATE KEY``: a JSON
  document (scrypt parameters and salt, a NaCl secretbox nonce, the ciphertext) whose plaintext is
  a PKCS#8 DER key (go-securesystemslib's ``encrypted`` package defines the layout);
* public keys as ``PUBLIC KEY`` PEM (SubjectPublicKeyInfo), as cosign writes ``cosign.pub``.

Algorithms are those Sigstore clients agree on (protobuf-specs ``PublicKeyDetails``): ECDSA P-256
with SHA-256, P-384 with SHA-384, P-521 with SHA-512, Ed25519, and RSA PKCS#1 v1.5 with SHA-256.
Anything else is an UnsupportedKeyError naming the curve or algorithm, raised when the key is
loaded rather than when a signature mysteriously fails to verify.

A key id is the hex SHA-256 of the DER SubjectPublicKeyInfo (RFC 6962's key id, which Rekor and
sigstore-python also use); a bundle's public-key hint is the same hash in base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from engine.atomicfile import write_atomic

from trust import secretbox
from trust.errors import KeyFileError, TruncatedKeyError, UnsupportedKeyError, WrongPasswordError
from trust.options import KEY_FORMATS, KEY_KINDS
from trust.untrusted import b64decode, read_bounded

PublicKeyType = Union[ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, rsa.RSAPublicKey]
PrivateKeyType = Union[ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey]
PasswordSource = Callable[[], bytes]

# curve name -> (hash, protobuf-specs PublicKeyDetails)
_EC_CURVES: dict[str, tuple[type[hashes.HashAlgorithm], str]] = {
    "secp256r1": (hashes.SHA256, "PKIX_ECDSA_P256_SHA_256"),
    "secp384r1": (hashes.SHA384, "PKIX_ECDSA_P384_SHA_384"),
    "secp521r1": (hashes.SHA512, "PKIX_ECDSA_P521_SHA_512"),
}
_MIN_RSA_BITS = 2048
# scrypt parameters go-securesystemslib writes (its Legacy, Standard and OWASP strengths). Anything
# else is refused before deriving: an attacker-supplied N could otherwise cost gigabytes of memory.
_SCRYPT_PARAMS = {(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)}
COSIGN_PEM_LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
MAX_KEY_FILE = 64 * 1024
_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)(?:-----END \1-----|\Z)", re.DOTALL)



def _check_public(key: object, where: str) -> PublicKeyType:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _EC_CURVES:
            raise UnsupportedKeyError(
                f"{where}: unsupported elliptic curve {key.curve.name} "
                "(Stockade signs and verifies with P-256, P-384, P-521 and Ed25519)")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise UnsupportedKeyError(f"{where}: RSA key of {key.key_size} bits is too small "
                                      f"(at least {_MIN_RSA_BITS})")
        return key
    raise UnsupportedKeyError(f"{where}: unsupported key algorithm {type(key).__name__} "
                              "(use ECDSA P-256, Ed25519 or RSA)")


@dataclass(frozen=True)
class PublicKey:
    """A verification key and the names other tools know it by."""

    key: PublicKeyType

    @classmethod
    def from_pem(cls, data: bytes, where: str = "public key") -> "PublicKey":
        blocks = _pem_blocks(data, where)
        if not blocks:
            raise KeyFileError(f"{where}: no PEM block found (expected -----BEGIN PUBLIC KEY-----)")
        label, der = blocks[0]
        if label == "CERTIFICATE":
            from cryptography import x509

            return cls(_check_public(x509.load_der_x509_certificate(der).public_key(), where))
        if label != "PUBLIC KEY":
            raise KeyFileError(f"{where}: expected a PUBLIC KEY PEM block, found {label}")
        return cls.from_der(der, where)

    @classmethod
    def from_der(cls, der: bytes, where: str = "public key") -> "PublicKey":
        try:
            key = serialization.load_der_public_key(der)
        except UnsupportedAlgorithm as exc:
            raise UnsupportedKeyError(f"{where}: unsupported key algorithm ({exc})") from None
        except ValueError:
            if _der_truncated(der):
                raise TruncatedKeyError(f"{where}: the public key is truncated") from None
            raise KeyFileError(f"{where}: not a valid SubjectPublicKeyInfo public key") from None
        return cls(_check_public(key, where))

    @property
    def der(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def key_id(self) -> str:
        """Hex SHA-256 of the DER public key (RFC 6962 key id)."""
        return hashlib.sha256(self.der).hexdigest()

    @property
    def hint(self) -> str:
        """The Sigstore bundle ``publicKey.hint``: base64 of the same SHA-256."""
        return base64.b64encode(hashlib.sha256(self.der).digest()).decode()

    @property
    def algorithm(self) -> str:
        """protobuf-specs ``PublicKeyDetails`` name, as trusted roots and sigstore-js spell it."""
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            return _EC_CURVES[self.key.curve.name][1]
        if isinstance(self.key, ed25519.Ed25519PublicKey):
            return "PKIX_ED25519"
        return "PKIX_RSA_PKCS1V15_%d_SHA256" % self.key.key_size

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's signature over exactly ``data``."""
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                hash_cls = _EC_CURVES[self.key.curve.name][0]
                self.key.verify(signature, data, ec.ECDSA(hash_cls()))
            elif isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, data)
            else:
                self.key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    def verify_digest(self, signature: bytes, sha256_digest: bytes, data: Callable[[], bytes]) -> bool:
        """Verify a signature over an artifact known by its SHA-256 (large blobs are not re-read for
        ECDSA and RSA, which sign the digest); Ed25519 signs the message itself, so ``data`` is
        called to get it."""
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, data())
            elif isinstance(self.key, ec.EllipticCurvePublicKey):
                hash_cls = _EC_CURVES[self.key.curve.name][0]
                if hash_cls is not hashes.SHA256:
                    return self.verify(signature, data())
                self.key.verify(signature, sha256_digest, ec.ECDSA(Prehashed(hashes.SHA256())))
            else:
                self.key.verify(signature, sha256_digest, padding.PKCS1v15(),
                                Prehashed(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class PrivateKey:
    """A signing key. ``public`` is derived from it, so the two can never disagree."""

    key: PrivateKeyType

    @property
    def public(self) -> PublicKey:
        return PublicKey(_check_public(self.key.public_key(), "private key"))

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` as cosign does: ECDSA over the curve's hash (ASN.1 DER signature),
        Ed25519 over the message, RSA PKCS#1 v1.5 with SHA-256."""
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            hash_cls = _EC_CURVES[self.key.curve.name][0]
            return self.key.sign(data, ec.ECDSA(hash_cls()))
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def sign_digest(self, sha256_digest: bytes, data: Callable[[], bytes]) -> bytes:
        """Sign an artifact known by its SHA-256 without re-reading it (ECDSA P-256, RSA);
        Ed25519 and the larger curves sign the message itself, so ``data`` is called for them."""
        if isinstance(self.key, ec.EllipticCurvePrivateKey) and self.key.curve.name == "secp256r1":
            return self.key.sign(sha256_digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(sha256_digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        return self.sign(data())

    def to_encrypted_pem(self, password: bytes, key_format: str = "pkcs8") -> bytes:
        """The private key encrypted under ``password``: PKCS#8 PEM with the best scheme
        cryptography offers (PBES2, AES-256-CBC), or cosign's scrypt + secretbox format so that
        cosign and skopeo can sign with the same file."""
        if not password:
            raise KeyFileError("refusing to write a private key with an empty password")
        if key_format == "cosign":
            der = self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
            return _seal_cosign(der, password, COSIGN_PEM_LABELS[0])
        if key_format != "pkcs8":
            raise KeyFileError(f"unknown key format {key_format!r} (choose {', '.join(KEY_FORMATS)})")
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(password))


def generate(kind: str = "ecdsa-p256") -> PrivateKey:
    """A new key pair: ECDSA P-256 (cosign's default) or Ed25519."""
    if kind == "ecdsa-p256":
        return PrivateKey(ec.generate_private_key(ec.SECP256R1()))
    if kind == "ed25519":
        return PrivateKey(ed25519.Ed25519PrivateKey.generate())
    raise UnsupportedKeyError(f"unknown key type {kind!r} (choose {', '.join(KEY_KINDS)})")


def write_key_pair(key: PrivateKey, password: bytes, prefix: Path, *, force: bool = False,
                   key_format: str = "pkcs8") -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (encrypted PKCS#8, mode 0600) and ``PREFIX.pub``; each atomically.

    Without ``force`` an existing file is never replaced: overwriting a signing key by accident
    cannot be undone.
    """
    key_path = prefix.with_name(prefix.name + ".key")
    pub_path = prefix.with_name(prefix.name + ".pub")
    if not force:
        for path in (key_path, pub_path):
            if path.exists():
                raise KeyFileError(f"{path} already exists (use --force to replace it)")
    write_atomic(key_path, key.to_encrypted_pem(password, key_format), mode=0o600)
    write_atomic(pub_path, key.public.pem, mode=0o644)
    return key_path, pub_path


# --- reading -------------------------------------------------------------------------------------

def _read_key_file(path: Path) -> bytes:
    return read_bounded(path, MAX_KEY_FILE, "key file", KeyFileError)


def _pem_blocks(data: bytes, where: str) -> list[tuple[str, bytes]]:
    """Every PEM block as (label, DER); a block without its END line is a truncated file."""
    blocks = []
    for m in _PEM_RE.finditer(data):
        label = m.group(1).decode()
        if not m.group(0).rstrip().endswith(b"-----END " + m.group(1) + b"-----"):
            raise TruncatedKeyError(f"{where}: the {label} block has no END line (file truncated?)")
        body = b"".join(m.group(2).split())
        try:
            der = base64.b64decode(body, validate=True)
        except binascii.Error:
            if len(body) % 4:
                raise TruncatedKeyError(f"{where}: the {label} block is truncated") from None
            raise KeyFileError(f"{where}: the {label} block is not valid base64") from None
        blocks.append((label, der))
    return blocks


def _der_truncated(der: bytes) -> bool:
    """True when a DER SEQUENCE announces more bytes than it has (a cut-off file)."""
    if len(der) < 2 or der[0] != 0x30:
        return len(der) < 2
    first = der[1]
    if first < 0x80:
        length, header = first, 2
    else:
        count = first & 0x7F
        if count == 0 or len(der) < 2 + count:
            return True
        length, header = int.from_bytes(der[2:2 + count], "big"), 2 + count
    return header + length > len(der)


def load_public_key(path: Path) -> PublicKey:
    """A ``PUBLIC KEY`` PEM file (or a certificate, whose key is used)."""
    return PublicKey.from_pem(_read_key_file(path), str(path))


def load_private_key(path: Path, password: PasswordSource) -> PrivateKey:
    """Load a private key in any supported format; ``password`` is only called when it is needed."""
    where = str(path)
    blocks = _pem_blocks(_read_key_file(path), where)
    if not blocks:
        raise KeyFileError(f"{where}: no PEM block found; not a private key file")
    label, der = blocks[0]
    if label in COSIGN_PEM_LABELS:
        der = _decrypt_cosign(der, password, where)
        return PrivateKey(_load_der_private(der, None, where))
    if label == "ENCRYPTED PRIVATE KEY":
        if _der_truncated(der):
            raise TruncatedKeyError(f"{where}: the encrypted private key is truncated")
        return PrivateKey(_load_der_private(der, password(), where))
    if label in ("PRIVATE KEY", "EC PRIVATE KEY"):
        return PrivateKey(_load_der_private(der, None, where))
    if label == "PUBLIC KEY":
        raise KeyFileError(f"{where}: this is a public key; signing needs the private key")
    raise KeyFileError(f"{where}: unsupported PEM block {label} (expected a private key)")


# RFC 8410 OneAsymmetricKey (PKCS#8 v2) for Ed25519 with the public key attached, as sigstore-rs
# writes it; OpenSSL's parser in cryptography only takes the v1 form, Go's takes both.
_ED25519_V2_PREFIX = bytes.fromhex("3051020101300506032b657004220420")
_ED25519_V2_MIDDLE = bytes.fromhex("812100")


def _ed25519_v2(der: bytes, where: str) -> ed25519.Ed25519PrivateKey | None:
    if len(der) != 83 or not der.startswith(_ED25519_V2_PREFIX) or der[48:51] != _ED25519_V2_MIDDLE:
        return None
    key = ed25519.Ed25519PrivateKey.from_private_bytes(der[16:48])
    if key.public_key().public_bytes_raw() != der[51:]:
        raise KeyFileError(f"{where}: the Ed25519 key's embedded public key does not match it")
    return key


def _load_der_private(der: bytes, password: bytes | None, where: str) -> PrivateKeyType:
    if password is None and (v2 := _ed25519_v2(der, where)) is not None:
        return v2
    try:
        key = serialization.load_der_private_key(der, password)
    except UnsupportedAlgorithm as exc:
        raise UnsupportedKeyError(f"{where}: unsupported key algorithm ({exc})") from None
    except (ValueError, TypeError) as exc:
        if _der_truncated(der):
            raise TruncatedKeyError(f"{where}: the private key is truncated") from None
        if password is not None and "decrypt" in str(exc).lower():
            raise WrongPasswordError(f"wrong password for private key {where}") from None
        raise KeyFileError(f"{where}: not a valid private key ({exc})") from None
    if isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)):
        _check_public(key.public_key(), where)
        return key
    raise UnsupportedKeyError(f"{where}: unsupported key algorithm {type(key).__name__} "
                              "(use ECDSA P-256, Ed25519 or RSA)")


def _b64field(doc: dict, path: tuple[str, ...], where: str) -> bytes:
    value: object = doc
    for part in path:
        if not isinstance(value, dict) or part not in value:
            raise KeyFileError(f"{where}: cosign key has no {'.'.join(path)}")
        value = value[part]
    return b64decode(value, f"{where}: cosign key field {'.'.join(path)}", KeyFileError)


def _decrypt_cosign(blob: bytes, password: PasswordSource, where: str) -> bytes:
    """Open a cosign/go-securesystemslib encrypted key: scrypt(password) -> secretbox key."""
    try:
        doc = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError):
        # A document that starts as an object but never closes lost its tail.
        if blob.lstrip().startswith(b"{") and not blob.rstrip().endswith(b"}"):
            raise TruncatedKeyError(f"{where}: the cosign key document is truncated") from None
        raise KeyFileError(f"{where}: the cosign key block is not JSON") from None
    if not isinstance(doc, dict):
        raise KeyFileError(f"{where}: the cosign key block is not a JSON object")
    kdf, cipher = doc.get("kdf"), doc.get("cipher")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise UnsupportedKeyError(f"{where}: unsupported key derivation {kdf!r:.60} (expected scrypt)")
    if not isinstance(cipher, dict) or cipher.get("name") != "nacl/secretbox":
        raise UnsupportedKeyError(f"{where}: unsupported cipher {cipher!r:.60} (expected nacl/secretbox)")
    params = kdf.get("params")
    triple = tuple(params.get(k) for k in ("N", "r", "p")) if isinstance(params, dict) else None
    if triple not in _SCRYPT_PARAMS:
        raise UnsupportedKeyError(f"{where}: unsupported scrypt parameters {params!r:.60}")
    salt = _b64field(doc, ("kdf", "salt"), where)
    nonce = _b64field(doc, ("cipher", "nonce"), where)
    box = _b64field(doc, ("ciphertext",), where)
    if len(nonce) != secretbox.NONCE_SIZE:
        raise KeyFileError(f"{where}: secretbox nonce must be {secretbox.NONCE_SIZE} bytes")
    if len(box) <= secretbox.TAG_SIZE:
        raise TruncatedKeyError(f"{where}: the encrypted key is truncated")
    n, r, p = triple  # type: ignore[misc]
    key = Scrypt(salt=salt, length=secretbox.KEY_SIZE, n=n, r=r, p=p).derive(password())
    try:
        return secretbox.open_box(key, nonce, box)
    except secretbox.SecretboxError:
        raise WrongPasswordError(f"wrong password for private key {where} "
                                 "(or the key file was modified)") from None


def _seal_cosign(der_pkcs8: bytes, password: bytes, label: str) -> bytes:
    n, r, p = 32768, 8, 1
    salt, nonce = os.urandom(32), os.urandom(secretbox.NONCE_SIZE)
    key = Scrypt(salt=salt, length=secretbox.KEY_SIZE, n=n, r=r, p=p).derive(password)
    doc = {"kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p},
                   "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(secretbox.seal(key, nonce, der_pkcs8)).decode()}
    body = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n").encode()
