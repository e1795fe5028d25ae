"""Who may be reached how: TLS trust per registry (``certs.d``) and the plain-HTTP rules.

Trust roots are the system CAs plus, as Docker does, every ``*.crt`` in ``certs.d/<host:port>/``; a
``NAME.cert`` with ``NAME.key`` there is a client certificate. ``certs.d`` roots are searched in order:
``registries.certs_dirs`` from the configuration, Stockade's own ``<config dir>/certs.d``, then
``/etc/docker/certs.d`` and ``/etc/containers/certs.d`` so a host already set up for Docker or podman
works unchanged.

Plain HTTP (and TLS without verification) is allowed only for loopback registries, for registries
the configuration lists in ``registries.insecure``, or when the user passes ``--tls-verify=false``.
Even then HTTPS is tried first and a certificate that fails verification on a registry that is not
marked insecure is an error, never a reason to fall back: only a server that does not speak TLS at
all makes the client use HTTP.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from engine.registry.errors import TLSError

SYSTEM_CERTS_DIRS = (Path("/etc/docker/certs.d"), Path("/etc/containers/certs.d"))
_HASHED = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def host_only(registry: str) -> str:
    """``127.0.0.1`` from ``127.0.0.1:5000``, ``::1`` from ``[::1]:5000``."""
    if registry.startswith("["):
        return registry[1:registry.find("]")]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def is_localhost_name(registry: str) -> bool:
    """``localhost`` or a name under ``.localhost`` (RFC 6761): loopback by name. The transport
    connects such a name to loopback addresses only, so DNS cannot send it elsewhere."""
    host = host_only(registry).lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def is_loopback(registry: str) -> bool:
    if is_localhost_name(registry):
        return True
    host = host_only(registry)
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_marked_insecure(registry: str, insecure: Iterable[str]) -> bool:
    """True when ``registry`` is listed (as ``host:port``, ``host``, or inside a CIDR, as Docker's
    ``insecure-registries`` allows)."""
    host = host_only(registry)
    for entry in insecure:
        if entry in (registry, host):
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


@dataclass(frozen=True)
class HostSecurity:
    """How to reach one registry host."""

    registry: str
    verify: bool  # verify the server's certificate chain and name
    allow_http: bool  # may fall back to plain HTTP when the server does not speak TLS
    ca_files: tuple[Path, ...] = ()
    client_pairs: tuple[tuple[Path, Path], ...] = ()

    @property
    def defers_system_cas(self) -> bool:
        """Whether the system CAs wait until a handshake needs them (the session then loads them
        and tries once more): for a host that may serve plain HTTP (loopback, insecure), whose
        HTTPS probe usually fails before any certificate is seen. Parsing the system bundle costs
        ~27 ms; Go's clients (skopeo, podman) load it lazily too."""
        return self.verify and self.allow_http

    def context(self) -> ssl.SSLContext:
        """An SSL context for this host: system CAs (see :attr:`defers_system_cas`) + certs.d CAs,
        client certificate if any. Without verification no CA is loaded at all."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and host name by default
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the user asked for it: --tls-verify=false or insecure
        elif not self.defers_system_cas:
            load_system_cas(ctx)
        try:
            for ca in self.ca_files:
                ctx.load_verify_locations(cafile=str(ca))
            for cert, key in self.client_pairs:
                ctx.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"cannot load TLS material for {self.registry}: {exc}") from None
        return ctx


def _hashed(directory: str | None) -> bool:
    """Whether ``directory`` is an OpenSSL hashed CA directory (``<subject hash>.N`` names)."""
    if not directory:
        return False
    try:
        with os.scandir(directory) as entries:
            return any(_HASHED.fullmatch(entry.name) for entry in entries)
    except OSError:
        return False


def load_system_cas(ctx: ssl.SSLContext) -> None:
    """Trust the system's CAs, as ``ssl.create_default_context`` does, but from the hashed CA
    directory when there is one: OpenSSL then reads only the issuers a handshake asks for, where
    the bundle file is parsed whole (~27 ms here, on every pull, before the first request).
    ``SSL_CERT_FILE``, or a system without a hashed directory, gets the default loading."""
    paths = ssl.get_default_verify_paths()
    if not os.environ.get(paths.openssl_cafile_env) and _hashed(paths.capath):
        ctx.load_verify_locations(capath=paths.capath)
    else:
        ctx.load_default_certs()


def _scan_certs_dir(directory: Path) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """Docker's rules: ``*.crt`` are CAs; ``X.cert`` pairs with ``X.key``; an unpaired one is an error."""
    cas: list[Path] = []
    pairs: list[tuple[Path, Path]] = []
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return cas, pairs
    for entry in entries:
        if entry.suffix == ".crt":
            cas.append(entry)
        elif entry.suffix == ".cert":
            key = entry.with_suffix(".key")
            if not key.exists():
                raise TLSError(f"{directory}: missing key {key.name} for client certificate {entry.name}")
            pairs.append((entry, key))
        elif entry.suffix == ".key" and not entry.with_suffix(".cert").exists():
            raise TLSError(f"{directory}: missing client certificate {entry.stem}.cert for key {entry.name}")
    return cas, pairs


def host_security(registry: str, *, certs_roots: Sequence[Path], insecure: Iterable[str],
                  tls_verify: bool | None = None, cert_dir: Path | None = None) -> HostSecurity:
    """Decide how to reach ``registry``.

    ``tls_verify`` is the command line's ``--tls-verify`` (None when not given). ``cert_dir`` is
    ``--cert-dir``: a directory holding this registry's certificates directly, searched first.
    """
    marked_insecure = is_marked_insecure(registry, insecure)
    verify = tls_verify if tls_verify is not None else not marked_insecure
    allow_http = marked_insecure or is_loopback(registry) or tls_verify is False
    cas: list[Path] = []
    pairs: list[tuple[Path, Path]] = []
    dirs = ([cert_dir] if cert_dir else []) + [root / registry for root in certs_roots]
    for directory in dirs:
        found_cas, found_pairs = _scan_certs_dir(directory)
        cas += found_cas
        pairs += found_pairs
    return HostSecurity(registry=registry, verify=verify, allow_http=allow_http,
                        ca_files=tuple(cas), client_pairs=tuple(pairs))
