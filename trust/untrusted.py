"""Reading input nobody vouches for yet: files with a size bound, and strict base64.

Key files, trusted roots and bundles are read through here so that a wrong path, a directory or a
runaway file gets the same one-line error everywhere, and a base64 field with stray characters is
refused rather than silently decoded to something else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from engine.boundedio import read_bytes
from trust.errors import SignatureDataError, TrustError


def read_bounded(path: Path, limit: int, what: str, error: type[TrustError] = TrustError) -> bytes:
    """The bytes of ``path`` (``what`` names it in errors), refusing anything above ``limit``.

    The two commonest mistakes (a wrong path, a directory) get their own words; the bounded read
    still refuses cleanly whatever else is wrong, or whatever changed since the look."""
    if not path.exists():
        raise error(f"{what} {path} does not exist")
    if path.is_dir():
        raise error(f"{what} {path} is a directory")
    return read_bytes(path, limit, what=f"{what} {path}", error=error)


def file_sha256(path: Path, chunk: int = 1024 * 1024) -> bytes:
    """SHA-256 of a file of any size, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            h.update(data)
    return h.digest()


def b64decode(value: object, what: str, error: type[TrustError] = SignatureDataError) -> bytes:
    """Strict standard base64 with padding, as protobuf JSON and cosign write it."""
    if not isinstance(value, str):
        raise error(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise error(f"{what} is not valid base64") from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
