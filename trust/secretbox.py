"""NaCl ``crypto_secretbox`` (XSalsa20-Poly1305), the cipher of cosign's encrypted key files.

cosign and skopeo write private keys as ``ENCRYPTED SIGSTORE PRIVATE KEY`` PEM blocks sealed with
NaCl's secretbox. ``cryptography`` provides Poly1305 but not XSalsa20, so the stream cipher is
written here from its specification (Bernstein, "Extending the Salsa20 nonce" and "Cryptography in
NaCl") rather than adding a native dependency for one small file format. It only ever processes a
few hundred bytes of key material, so pure Python speed is irrelevant; the Poly1305 tag check is
done by ``cryptography`` (OpenSSL) in constant time, and it happens before any plaintext is
returned. Known-answer tests from NaCl and libsodium live in ``tests/trust/test_secretbox.py``.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.poly1305 import Poly1305

KEY_SIZE = 32
NONCE_SIZE = 24
TAG_SIZE = 16
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_MASK = 0xFFFFFFFF


class SecretboxError(ValueError):
    """The box failed authentication: wrong key, or the ciphertext was altered."""


def _rotl(v: int, n: int) -> int:
    return ((v << n) | (v >> (32 - n))) & _MASK


def _double_rounds(x: list[int]) -> None:
    """Ten Salsa20 double rounds (20 rounds) applied to the 16-word state in place."""
    for _ in range(10):
        # column round
        for a, b, c, d in ((0, 4, 8, 12), (5, 9, 13, 1), (10, 14, 2, 6), (15, 3, 7, 11)):
            x[b] ^= _rotl((x[a] + x[d]) & _MASK, 7)
            x[c] ^= _rotl((x[b] + x[a]) & _MASK, 9)
            x[d] ^= _rotl((x[c] + x[b]) & _MASK, 13)
            x[a] ^= _rotl((x[d] + x[c]) & _MASK, 18)
        # row round
        for a, b, c, d in ((0, 1, 2, 3), (5, 6, 7, 4), (10, 11, 8, 9), (15, 12, 13, 14)):
            x[b] ^= _rotl((x[a] + x[d]) & _MASK, 7)
            x[c] ^= _rotl((x[b] + x[a]) & _MASK, 9)
            x[d] ^= _rotl((x[c] + x[b]) & _MASK, 13)
            x[a] ^= _rotl((x[d] + x[c]) & _MASK, 18)


def _initial_state(key: bytes, block16: bytes) -> list[int]:
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", block16)
    return [_SIGMA[0], k[0], k[1], k[2], k[3], _SIGMA[1], n[0], n[1],
            n[2], n[3], _SIGMA[2], k[4], k[5], k[6], k[7], _SIGMA[3]]


def hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    """HSalsa20: derive a 32-byte subkey from a key and the first 16 bytes of an XSalsa20 nonce."""
    x = _initial_state(key, nonce16)
    _double_rounds(x)
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


def _salsa20_block(key: bytes, nonce8: bytes, counter: int) -> bytes:
    state = _initial_state(key, nonce8 + struct.pack("<Q", counter))
    x = list(state)
    _double_rounds(x)
    return struct.pack("<16I", *(((a + b) & _MASK) for a, b in zip(x, state)))


def xsalsa20_xor(key: bytes, nonce: bytes, data: bytes, *, skip: int = 0) -> bytes:
    """XOR ``data`` with the XSalsa20 keystream, starting ``skip`` bytes into the stream."""
    if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE:
        raise ValueError("XSalsa20 needs a 32-byte key and a 24-byte nonce")
    subkey = hsalsa20(key, nonce[:16])
    stream = bytearray()
    counter = 0
    while len(stream) < skip + len(data):
        stream += _salsa20_block(subkey, nonce[16:], counter)
        counter += 1
    ks = stream[skip:skip + len(data)]
    return bytes(a ^ b for a, b in zip(data, ks))


def _poly_key_and_stream(key: bytes, nonce: bytes) -> bytes:
    # The first 32 bytes of the keystream are the one-time Poly1305 key; encryption starts at 32.
    return xsalsa20_xor(key, nonce, bytes(32))


def seal(key: bytes, nonce: bytes, message: bytes) -> bytes:
    """``crypto_secretbox_easy``: return tag (16 bytes) || ciphertext."""
    ciphertext = xsalsa20_xor(key, nonce, message, skip=32)
    tag = Poly1305.generate_tag(_poly_key_and_stream(key, nonce), ciphertext)
    return tag + ciphertext


def open_box(key: bytes, nonce: bytes, box: bytes) -> bytes:
    """``crypto_secretbox_open_easy``: authenticate then decrypt; raise SecretboxError on failure."""
    if len(box) < TAG_SIZE:
        raise SecretboxError("box shorter than its authentication tag")
    tag, ciphertext = box[:TAG_SIZE], box[TAG_SIZE:]
    try:
        Poly1305.verify_tag(_poly_key_and_stream(key, nonce), ciphertext, tag)
    except InvalidSignature:
        raise SecretboxError("authentication failed") from None
    return xsalsa20_xor(key, nonce, ciphertext, skip=32)
