"""The repository's private keys: ECDSA P-256, encrypted at rest, one file per key id.

Each key is an encrypted PKCS#8 PEM (``BEGIN ENCRYPTED PRIVATE KEY``: PBES2, AES-256-CBC, as
``stockade key generate`` writes them), so ``openssl pkey`` can open it with the password. The
file is named after the TUF key id (``keys/<keyid>.key``, mode 0600) and the metadata says which
role a key id serves: a rotation writes the new key's file before the metadata that names it and
deletes the old file after, so a crash at any point leaves every key the current metadata names
on disk.

The password is asked for lazily (``password`` is a callable): an operation only decrypts the keys
it signs with, and ``trust inspect`` never asks at all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from securesystemslib.signer import CryptoSigner, Key, Signer, SSlibKey

from trust import keys as signing_keys
from engine.atomicfile import write_atomic
from trust.tuf.errors import TufKeyError

KEY_SUFFIX = ".key"
_KEYID = re.compile(r"[0-9a-f]{64}")


class KeyStore:
    """Encrypted private keys in one directory, found by TUF key id.

    Key files are read and written by ``trust.keys`` (the same code and the same errors as
    ``stockade key generate``); this class only knows where each TUF key id lives.
    """

    def __init__(self, directory: Path, password: Callable[[], bytes]) -> None:
        self.directory = directory
        self._password = password
        self._cached_password: bytes | None = None
        self._signers: dict[str, Signer] = {}

    def generate(self) -> Key:
        """A new ECDSA P-256 key: written encrypted (0600), returned as its TUF public key."""
        private = signing_keys.generate("ecdsa-p256")
        signer = CryptoSigner(private.key)
        public = signer.public_key
        write_atomic(self.path(public.keyid), private.to_encrypted_pem(self.password()), mode=0o600)
        self._signers[public.keyid] = signer
        return public

    def signer(self, key: Key) -> Signer:
        """The signer for public ``key``, decrypting its file on first use."""
        cached = self._signers.get(key.keyid)
        if cached is not None:
            return cached
        path = self.path(key.keyid)
        if not path.is_file():
            raise TufKeyError(f"no private key {path} for key id {key.keyid[:12]}: the metadata "
                              "names a key this repository does not hold")
        private = signing_keys.load_private_key(path, self.password)
        if not isinstance(key, SSlibKey):
            raise TufKeyError(f"key {key.keyid[:12]} is not a key type Stockade signs with")
        try:
            signer = CryptoSigner(private.key, key)
        except ValueError as exc:  # securesystemslib's KeyMismatchError is a ValueError too
            raise TufKeyError(f"key file {path} does not hold the key the metadata names "
                              f"({exc})") from None
        self._signers[key.keyid] = signer
        return signer

    def remove(self, keyid: str) -> None:
        """Delete a key that no metadata names any more (after a rotation)."""
        self.path(keyid).unlink(missing_ok=True)
        self._signers.pop(keyid, None)

    def path(self, keyid: str) -> Path:
        # A key id comes from metadata on disk: check its form before it becomes a file name.
        if not _KEYID.fullmatch(keyid):
            raise TufKeyError(f"malformed key id {keyid[:80]!r} in the repository metadata")
        return self.directory / f"{keyid}{KEY_SUFFIX}"

    def password(self) -> bytes:
        if self._cached_password is None:
            self._cached_password = self._password()
        return self._cached_password
