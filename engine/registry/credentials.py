"""Registry credentials: Stockade's own file (``stockade login``) and Docker's ``config.json``.

Stockade's file has Docker's shape (``{"auths": {"host": {"auth": base64("user:pass")}}}``) so tools
that read podman's ``auth.json`` read it too. As containers-auth.json(5) allows, a key may also name a
namespace or a repository (``registry/namespace`` or ``registry/namespace/repo``): the longest key
that is the image's repository or a parent of it wins, then the registry's own entry. A key written
as a URL (``https://host/v1/``, Docker's legacy form) names its host only. It lives at ``--authfile``, else ``$REGISTRY_AUTH_FILE``
(podman's variable), else ``<config dir>/auth.json``; it is written atomically with mode 0600 in a
0700 directory, because it holds passwords.

Lookups fall back to Docker's configuration (``$DOCKER_CONFIG/config.json``, default
``~/.docker/config.json``): its ``auths`` entries, and its credential helpers (``credHelpers`` per
registry, ``credsStore`` for all), which are run as ``docker-credential-<name> get`` exactly as
Docker runs them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess  # nosec B404 # Docker credential helpers, run with an argument list
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomicfile import write_atomic
from engine.boundedio import parse_json, read_bytes
from engine.registry.errors import AuthError

DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "docker.io")
ENV_AUTH_FILE = "REGISTRY_AUTH_FILE"
MAX_FILE = 4 * 1024 * 1024  # a credentials file larger than this is not one
HELPER_TIMEOUT = 60  # seconds a credential helper may take (one that waits for a keychain prompt)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    identity_token: str | None = None  # an OAuth2 refresh token (Docker's "identitytoken")

    def __repr__(self) -> str:  # never print a password in a traceback
        return f"Credentials(username={self.username!r}, password=***)"


def normalize_host(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://h:5000/x`` -> ``h:5000``."""
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


def normalize_key(key: str) -> str:
    """An ``auths`` key as containers-auth.json(5) reads it: a URL names its host only
    (``https://index.docker.io/v1/`` -> ``docker.io``); anything else is ``host[/namespace…]``
    (``quay.io/org/app/`` -> ``quay.io/org/app``)."""
    if "://" in key:
        return normalize_host(key)
    host, _, path = key.partition("/")
    host = normalize_host(host)
    path = path.strip("/")
    return f"{host}/{path}" if path else host


def docker_config_path() -> Path:
    directory = os.environ.get("DOCKER_CONFIG")
    return (Path(directory) if directory else Path.home() / ".docker") / "config.json"


def default_auth_file(config_dir: Path) -> Path:
    env = os.environ.get(ENV_AUTH_FILE)
    return Path(env) if env else config_dir / "auth.json"


def _read_json(path: Path) -> dict[str, Any]:
    """The credentials file as an object; a missing (or empty) file holds no credentials."""
    what = f"credentials file {path}"
    if not path.exists():
        return {}
    raw = read_bytes(path, MAX_FILE, what=what, error=AuthError)
    doc = parse_json(raw or b"{}", what=what, error=AuthError)
    if not isinstance(doc, dict):
        raise AuthError(f"credentials file {path}: expected a JSON object")
    return doc


def _decode_entry(entry: Any, path: Path, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        raise AuthError(f"credentials file {path}: entry {key!r} is not an object")
    token = entry.get("identitytoken") or None
    auth = entry.get("auth")
    if auth:
        try:
            user, sep, password = base64.b64decode(auth, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthError(f"credentials file {path}: entry {key!r} has a malformed auth value") from None
        if not sep:
            raise AuthError(f"credentials file {path}: entry {key!r} auth is not user:password")
        return Credentials(user, password, token)
    if entry.get("username") is not None:
        return Credentials(str(entry["username"]), str(entry.get("password", "")), token)
    if token:
        return Credentials("<token>", "", token)
    return None


def _from_auths(doc: dict[str, Any], registry: str, path: Path, repository: str | None = None,
                ) -> Credentials | None:
    """The entry for ``registry`` (with ``repository``: the longest key among the repository, its
    namespaces and the registry; without it, and in Docker's file, the registry's own key only)."""
    auths = doc.get("auths", {})
    if auths is None:
        return None
    if not isinstance(auths, dict):
        raise AuthError(f"credentials file {path}: 'auths' must be an object")
    wanted = [registry]
    if repository:
        parts = repository.split("/")
        wanted = [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)] + wanted
    by_key: dict[str, list[tuple[str, Any]]] = {}
    for key, entry in auths.items():
        by_key.setdefault(normalize_key(key) if repository else normalize_host(key), []).append((key, entry))
    for name in wanted:
        for key, entry in by_key.get(name, []):
            found = _decode_entry(entry, path, key)
            if found:
                return found
    return None


def _run_helper(name: str, registry: str) -> Credentials | None:
    """``docker-credential-NAME get``: stdin the server, stdout {"Username", "Secret"}."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise AuthError(f"credential helper name {name!r} is malformed")
    # Absolute PATH entries only: an empty entry or "." would run a helper planted in whatever
    # directory the command is run from (Go's exec.LookPath refuses those too, since Go 1.19).
    search = os.pathsep.join(d for d in os.environ.get("PATH", os.defpath).split(os.pathsep)
                             if os.path.isabs(d))
    program = shutil.which(f"docker-credential-{name}", path=search)
    if program is None:
        raise AuthError(f"credential helper docker-credential-{name} (from {docker_config_path()}) "
                        "is not installed")
    server = "https://index.docker.io/v1/" if registry == DOCKER_HUB else registry
    try:
        proc = subprocess.run([program, "get"], input=server.encode(), capture_output=True,
                              timeout=HELPER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper docker-credential-{name} did not answer for {registry} "
                        f"within {HELPER_TIMEOUT} s") from None
    if proc.returncode != 0:
        message = proc.stdout.decode(errors="replace").strip()
        if "credentials not found" in message.lower():
            return None
        raise AuthError(f"credential helper docker-credential-{name} failed for {registry}: "
                        f"{message or proc.stderr.decode(errors='replace').strip()}")
    try:
        doc = json.loads(proc.stdout[:MAX_FILE])
        user, secret = str(doc["Username"]), str(doc["Secret"])
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"credential helper docker-credential-{name} printed malformed output") from None
    if user == "<token>":
        return Credentials(user, "", secret)
    return Credentials(user, secret)


class CredentialStore:
    """Where credentials are looked up (Stockade's file, then Docker's) and saved (Stockade's)."""

    def __init__(self, auth_file: Path, docker_config: Path | None = None) -> None:
        self.auth_file = auth_file
        self.docker_config = docker_config or docker_config_path()

    def get(self, registry: str, repository: str | None = None) -> Credentials | None:
        """Credentials for ``registry``, or for ``repository`` on it when Stockade's file has an
        entry for that repository or one of its namespaces (Docker's file is per registry)."""
        registry = normalize_host(registry)
        found = _from_auths(_read_json(self.auth_file), registry, self.auth_file, repository)
        if found:
            return found
        doc = _read_json(self.docker_config)
        helpers = doc.get("credHelpers") or {}
        if isinstance(helpers, dict):
            for key, helper in helpers.items():
                if normalize_host(key) == registry and isinstance(helper, str):
                    return _run_helper(helper, registry)
        found = _from_auths(doc, registry, self.docker_config)
        if found:
            return found
        store = doc.get("credsStore")
        if isinstance(store, str) and store:
            return _run_helper(store, registry)
        return None

    def save(self, registry: str, credentials: Credentials) -> None:
        registry = normalize_key(registry)
        doc = _read_json(self.auth_file)
        auths = doc.setdefault("auths", {})
        for key in [k for k in auths if normalize_key(k) == registry]:
            del auths[key]
        pair = f"{credentials.username}:{credentials.password}".encode()
        auths[registry] = {"auth": base64.b64encode(pair).decode("ascii")}
        self._write(doc)

    def remove(self, registry: str) -> bool:
        """Forget ``registry``; False if Stockade's file had no entry for it."""
        registry = normalize_key(registry)
        doc = _read_json(self.auth_file)
        auths = doc.get("auths") or {}
        keys = [k for k in auths if normalize_key(k) == registry]
        for key in keys:
            del auths[key]
        if keys:
            self._write(doc)
        return bool(keys)

    def registries(self) -> list[str]:
        return sorted(normalize_key(k) for k in (_read_json(self.auth_file).get("auths") or {}))

    def _write(self, doc: dict[str, Any]) -> None:
        self.auth_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.auth_file, (json.dumps(doc, indent=2) + "\n").encode(), mode=0o600)
