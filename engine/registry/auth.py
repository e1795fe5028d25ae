"""Registry authentication: ``WWW-Authenticate`` challenges, basic auth, and bearer tokens.

The distribution token flow: a request is refused with ``401`` and a challenge
``Bearer realm="…",service="…",scope="…"``; the client asks the realm for a token for that scope
(anonymously, with basic credentials, or with an OAuth2 refresh token), then repeats the request with
``Authorization: Bearer <token>``. Tokens are cached per scope until they expire. Basic challenges
are answered with the user's credentials. Credentials are looked up per repository (the first
``repository:NAME:…`` of the scope), because an ``auth.json`` may hold different ones per
repository or namespace of one registry. Nothing here does I/O itself: the session passes a
``fetch`` function, so the logic is the same for the real network and for a hostile test server.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode, urlsplit

from engine.registry.credentials import Credentials
from engine.registry.errors import AuthError

MAX_TOKEN_RESPONSE = 1024 * 1024
MIN_TOKEN_LIFETIME = 60  # seconds; the token spec's default when expires_in is missing or smaller
MAX_TOKEN_LIFETIME = 24 * 3600
CLIENT_ID = "stockade"

# status, body
Fetch = Callable[[str, str, dict[str, str], bytes | None], tuple[int, bytes]]
# repository (None: the registry as a whole) -> credentials
CredentialsFor = Callable[[str | None], Credentials | None]

_PARAM = re.compile(r'\s*,?\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s"]*)')
_SCHEME = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9_.-]*)(?=\s|,|$)")
_ESCAPE = re.compile(r"\\(.)")
_TOKEN = re.compile(r"[!-~]{1,65536}")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "bearer", "basic"
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header into its challenges (RFC 7235: comma-separated
    challenges, each a scheme followed by ``key=value`` or ``key="quoted value"`` parameters)."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        param = _PARAM.match(header, pos)
        if param and out:
            value = param.group(2)
            if value.startswith('"'):
                value = _ESCAPE.sub(r"\1", value[1:-1])
            out[-1].params[param.group(1).lower()] = value
            pos = param.end()
            continue
        scheme = _SCHEME.match(header, pos)
        if not scheme:
            break
        out.append(Challenge(scheme.group(1).lower(), {}))
        pos = scheme.end()
    return out


def repository_of(scope: tuple[str, ...]) -> str | None:
    """The repository a request is for: the first ``repository:NAME:actions`` of its scope."""
    for item in scope:
        kind, _, rest = item.partition(":")
        if kind == "repository" and ":" in rest:
            return rest.rpartition(":")[0]
    return None


def basic_header(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class Authenticator:
    """Authorization headers for one registry, per scope (``repository:ns/repo:pull``)."""

    def __init__(self, registry: str, credentials: CredentialsFor, fetch: Fetch,
                 *, realm_allowed: Callable[[str], bool]) -> None:
        self.registry = registry
        self.credentials = credentials
        self._fetch = fetch
        self._realm_allowed = realm_allowed  # may credentials go to this realm URL?
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._basic = False  # set once the registry asked for basic auth
        self._bearer: Challenge | None = None
        self._lock = threading.Lock()

    def _basic_for(self, scope: tuple[str, ...]) -> str | None:
        creds = self.credentials(repository_of(scope))
        if creds is None or not creds.username or not creds.password:
            return None
        return basic_header(creds)

    def header(self, scope: tuple[str, ...]) -> str | None:
        """A header to send up front for ``scope``, if one is known or can be had without a 401
        round trip (a bearer challenge seen before means a token for a new scope can be fetched)."""
        with self._lock:
            basic = self._basic
        if basic:
            return self._basic_for(scope)
        with self._lock:
            cached = self._tokens.get(scope)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            bearer = self._bearer
        return self._token(bearer, scope) if bearer is not None else None

    def prime(self, www_authenticate: str | None) -> None:
        """Remember the challenge of an unauthenticated ping so the first real request can carry
        its credentials (basic) or token (bearer) without being refused first."""
        for challenge in parse_challenges(www_authenticate or ""):
            if challenge.scheme == "bearer":
                with self._lock:
                    self._bearer = challenge
                return
            if challenge.scheme == "basic":
                with self._lock:
                    self._basic = True
                return

    def answer(self, www_authenticate: str | None, scope: tuple[str, ...]) -> str:
        """Answer a 401: return the Authorization header to retry with, or raise AuthError."""
        challenges = parse_challenges(www_authenticate or "")
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            challenge = by_scheme["bearer"]
            with self._lock:
                self._bearer = challenge
            return self._token(challenge, scope)
        if "basic" in by_scheme:
            creds = self.credentials(repository_of(scope))
            if creds is None or not creds.username or creds.identity_token and not creds.password:
                raise AuthError(f"{self.registry} requires authentication "
                                f"(run: stockade login {self.registry})")
            with self._lock:
                self._basic = True
            return basic_header(creds)
        raise AuthError(f"{self.registry} refused access without a usable authentication challenge "
                        f"({www_authenticate or 'no WWW-Authenticate header'})")

    def _token(self, challenge: Challenge, scope: tuple[str, ...]) -> str:
        realm = challenge.params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthError(f"{self.registry} sent a bearer challenge with an invalid realm {realm!r}")
        if parts.scheme == "http" and not self._realm_allowed(parts.netloc):
            raise AuthError(f"{self.registry}: refusing to fetch a token over plain HTTP from {realm}")
        scopes = list(scope)
        if challenge.params.get("scope"):
            scopes += [s for s in challenge.params["scope"].split(" ") if s and s not in scopes]
        query: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            query.append(("service", challenge.params["service"]))
        creds = self.credentials(repository_of(scope))
        headers: dict[str, str] = {"Accept": "application/json"}
        if creds and creds.identity_token:
            form = urlencode([("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                              ("client_id", CLIENT_ID)] + query + [("scope", s) for s in scopes])
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            status, body = self._fetch("POST", realm, headers, form.encode())
        else:
            if creds:
                headers["Authorization"] = basic_header(creds)
            query += [("scope", s) for s in scopes]
            sep = "&" if parts.query else "?"
            url = realm + (sep + urlencode(query) if query else "")
            status, body = self._fetch("GET", url, headers, None)
        if status in (401, 403):
            who = f"as {creds.username}" if creds else "anonymously (run: stockade login " \
                                                       f"{self.registry})"
            raise AuthError(f"{self.registry}: the token service refused access {who} "
                            f"for {' '.join(scopes) or 'the registry'}")
        if status != 200:
            raise AuthError(f"{self.registry}: the token service at {realm} answered HTTP {status}")
        token, lifetime = _parse_token(body, realm)
        header = f"Bearer {token}"
        with self._lock:
            self._tokens[scope] = (header, time.monotonic() + max(lifetime, MIN_TOKEN_LIFETIME) - 5)
        return header


def _parse_token(body: bytes, realm: str) -> tuple[str, int]:
    try:
        doc = json.loads(body)
    except ValueError:
        raise AuthError(f"the token service at {realm} sent a response that is not JSON") from None
    if not isinstance(doc, dict):
        raise AuthError(f"the token service at {realm} sent a malformed response")
    token = doc.get("token") or doc.get("access_token")
    # Visible ASCII only: the token becomes a header value (a NUL or a non-Latin-1 character
    # would be sent raw or crash the request).
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise AuthError(f"the token service at {realm} sent no usable token")
    lifetime = doc.get("expires_in", MIN_TOKEN_LIFETIME)
    if not isinstance(lifetime, int) or isinstance(lifetime, bool):
        lifetime = MIN_TOKEN_LIFETIME
    # A huge expires_in (10**400 overflows a float clock) is cut: a token that does expire
    # earlier is answered with a 401, and a new one fetched.
    return token, min(lifetime, MAX_TOKEN_LIFETIME)
