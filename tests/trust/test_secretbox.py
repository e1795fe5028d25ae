"""NaCl secretbox (XSalsa20-Poly1305) against published known answers.

Vectors: NaCl's ``tests/box.c``/``secretbox.c`` (the 131-byte message under ``firstkey`` and the
24-byte nonce, as repeated in libsodium's tests), libsodium ``core2.c`` (HSalsa20 ``secondkey``), and
go-securesystemslib ``encrypted/encrypted_test.go`` (scrypt + secretbox documents, passphrase
``supersecret``, plaintext ``reallyimportant``), the format cosign keys use.
"""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from trust import secretbox

FIRSTKEY = bytes.fromhex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
NONCE = bytes.fromhex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
MESSAGE = bytes.fromhex(
    "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c6129"
    "6cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde"
    "048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705")
BOX = bytes.fromhex(
    "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186a"
    "c0dfc17c98dce87b4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae"
    "90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74"
    "e355a5")


def test_hsalsa20_known_answer() -> None:
    assert secretbox.hsalsa20(FIRSTKEY, NONCE[:16]).hex() == (
        "dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4")


def test_seal_matches_nacl() -> None:
    assert secretbox.seal(FIRSTKEY, NONCE, MESSAGE) == BOX


def test_open_matches_nacl() -> None:
    assert secretbox.open_box(FIRSTKEY, NONCE, BOX) == MESSAGE


@pytest.mark.parametrize("index", [0, 15, 16, len(BOX) - 1])
def test_any_flipped_bit_fails_authentication(index: int) -> None:
    tampered = bytearray(BOX)
    tampered[index] ^= 0x01
    with pytest.raises(secretbox.SecretboxError):
        secretbox.open_box(FIRSTKEY, NONCE, bytes(tampered))


def test_wrong_key_fails() -> None:
    with pytest.raises(secretbox.SecretboxError):
        secretbox.open_box(bytes(32), NONCE, BOX)


def test_short_box_is_rejected() -> None:
    with pytest.raises(secretbox.SecretboxError):
        secretbox.open_box(FIRSTKEY, NONCE, BOX[:10])


# The first document comes from Decrypt (raw plaintext); the second from Marshal, which seals the
# JSON encoding of a Go []byte (a base64 string).
@pytest.mark.parametrize(("doc", "expected"), [
    ('{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},'
    '"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},'
    '"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}', b"reallyimportant"),
    ('{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},'
    '"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},'
    '"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}', b'"cmVhbGx5aW1wb3J0YW50"'),
])
def test_go_securesystemslib_documents(doc: str, expected: bytes) -> None:
    d = json.loads(doc)
    p = d["kdf"]["params"]
    key = Scrypt(salt=base64.b64decode(d["kdf"]["salt"]), length=32, n=p["N"], r=p["r"], p=p["p"]).derive(
        b"supersecret")
    plain = secretbox.open_box(key, base64.b64decode(d["cipher"]["nonce"]), base64.b64decode(d["ciphertext"]))
    assert plain == expected
