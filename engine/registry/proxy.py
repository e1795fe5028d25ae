"""Which proxy a request goes through: ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY``, as Go reads them.

Docker, podman and skopeo are Go programs using ``net/http``'s ``ProxyFromEnvironment``, so a
corporate machine is already set up for its rules, and Stockade follows the same ones:

* ``HTTPS_PROXY`` serves ``https://`` URLs (through a ``CONNECT`` tunnel: TLS stays end to end
  between Stockade and the registry, the proxy sees only the host name), ``HTTP_PROXY`` serves
  ``http://`` URLs (absolute-form requests). Upper case wins over lower case; a value without a
  scheme means ``http://``. ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set (a CGI
  environment, where a client's ``Proxy:`` header would become it: "httpoxy").
* ``localhost`` and loopback addresses are never proxied.
* ``NO_PROXY`` is a comma-separated list: ``*`` (nothing is proxied); an IP address, optionally
  with a port (``10.1.2.3``, ``10.1.2.3:5000``, ``[::1]:5000``); a CIDR block (``10.0.0.0/8``); a
  domain, optionally with a port, which matches the host and every subdomain (``example.com``
  matches ``example.com`` and ``r.example.com``); a domain with a leading ``.`` or ``*.``, which
  matches subdomains only. Host names compare case-insensitively; a port in an entry must equal
  the request's port (the scheme's default when the URL has none).

Only ``http://`` proxies are supported (with ``user:password@`` for ``Proxy-Authorization: Basic``);
an ``https://`` or SOCKS proxy URL is refused with a clear error rather than silently bypassed.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import unquote, urlsplit

from engine.registry.errors import RegistryError
from engine.registry.tls import host_only, is_loopback

DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProxyError(RegistryError):
    """A proxy setting cannot be used, or the proxy refused to connect us."""


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy: where it listens and the ``Proxy-Authorization`` header it needs, if any."""

    host: str
    port: int
    authorization: str | None = None

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:  # for messages: never the credentials
        return f"http://{self.netloc}"

    def headers(self) -> dict[str, str]:
        return {"Proxy-Authorization": self.authorization} if self.authorization else {}


def parse_proxy(value: str, variable: str) -> Proxy:
    """A proxy URL from the environment; a bare ``host:port`` means ``http://host:port``."""
    text = value.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme != "http":
        raise ProxyError(f"{variable}={_redacted(text)}: only http:// proxies are supported "
                         f"(not {parts.scheme}://)")
    try:
        port = parts.port or DEFAULT_PORTS["http"]
    except ValueError:
        raise ProxyError(f"{variable}={_redacted(text)}: the port is not a number") from None
    if not parts.hostname:
        raise ProxyError(f"{variable}={_redacted(text)}: no proxy host")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


def _redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    scheme, sep, rest = url.rpartition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}"


@dataclass(frozen=True)
class _Entry:
    """One ``NO_PROXY`` entry: a CIDR block, an IP address or a domain, each with an optional port."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    address: IPAddress | None = None
    domain: str = ""  # with a leading "."
    exact: bool = False  # the domain itself matches too (an entry written without "." or "*.")
    port: int | None = None

    def matches(self, host: str, ip: IPAddress | None, port: int) -> bool:
        if self.network is not None:
            return ip is not None and ip in self.network
        if self.port is not None and self.port != port:
            return False
        if self.address is not None:
            return ip is not None and ip == self.address
        return host.endswith(self.domain) or (self.exact and host == self.domain[1:])


def _parse_entry(text: str) -> _Entry | None:
    if "/" in text:
        try:
            return _Entry(network=ipaddress.ip_network(text, strict=False))
        except ValueError:
            return None  # Go ignores an entry it cannot read; so do we
    host, port = text, None
    if text.startswith("["):  # [v6]:port or [v6]
        inner, _, rest = text[1:].partition("]")
        host = inner
        if rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit():
            port = int(rest[1:])
    elif text.count(":") == 1:
        name, _, digits = text.partition(":")
        if not (digits.isascii() and digits.isdigit()):
            return None
        host, port = name, int(digits)
    if not host:
        return None
    try:
        return _Entry(address=ipaddress.ip_address(host), port=port)
    except ValueError:
        pass
    if host.startswith("*."):
        host = host[1:]
    exact = not host.startswith(".")
    return _Entry(domain=host if not exact else f".{host}", exact=exact, port=port)


@dataclass(frozen=True)
class ProxyConfig:
    """The proxies for ``http://`` and ``https://`` URLs and the ``NO_PROXY`` exceptions."""

    http: Proxy | None = None
    https: Proxy | None = None
    everything_direct: bool = False  # NO_PROXY=*
    exceptions: tuple[_Entry, ...] = field(default=())

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "ProxyConfig":
        env = os.environ if environ is None else environ

        def first(*names: str) -> tuple[str, str] | None:
            for name in names:
                if env.get(name):
                    return name, env[name]
            return None

        https = first("HTTPS_PROXY", "https_proxy")
        http = None if env.get("REQUEST_METHOD") else first("HTTP_PROXY", "http_proxy")
        no_proxy = first("NO_PROXY", "no_proxy")
        entries = [e.strip().lower() for e in (no_proxy[1] if no_proxy else "").split(",")]
        parsed = [_parse_entry(e) for e in entries if e and e != "*"]
        return cls(http=parse_proxy(http[1], http[0]) if http else None,
                   https=parse_proxy(https[1], https[0]) if https else None,
                   everything_direct="*" in entries,
                   exceptions=tuple(e for e in parsed if e is not None))

    def for_url(self, url: str) -> Proxy | None:
        """The proxy to send a request for ``url`` through, or None to connect directly."""
        parts = urlsplit(url)
        proxy = self.https if parts.scheme == "https" else self.http if parts.scheme == "http" else None
        if proxy is None or self.everything_direct:
            return None
        netloc = parts.netloc.rpartition("@")[2]
        if is_loopback(netloc):
            return None
        host = host_only(netloc).lower().rstrip(".")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            return None  # a malformed URL fails when it is used, not here
        try:
            ip: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if any(entry.matches(host, ip, port) for entry in self.exceptions):
            return None
        return proxy
