"""Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1, in plain, basic-auth and TLS set-ups.

Each server gets its own storage, port and configuration under a temporary directory and is killed
when the test session ends. Nothing here talks to the network beyond loopback.
"""

from __future__ import annotations

import socket
import ssl
import subprocess  # nosec B404 # starts the registry binary with an argument list
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY_BIN = "/usr/bin/docker-registry"
USER, PASSWORD = "tester", "testpass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    """A running registry: where it listens and what a client needs to reach it."""

    mode: str  # plain | auth | tls | tlsauth
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    ca_cert: Path | None = None  # the CA that signed the server certificate (TLS modes)

    @property
    def host(self) -> str:
        """``host:port`` as it appears in an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.mode.startswith("tls") else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        return (USER, PASSWORD) if self.mode.endswith("auth") else None

    @property
    def storage(self) -> Path:
        return self.workdir / "storage"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1/localhost signed by it (openssl CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731  # nosec B603
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=Stockade test CA", "-keyout", str(ca_key), "-out", str(ca_crt),
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return ca_crt, crt, key


def start_registry(workdir: Path, mode: str = "plain") -> Registry:
    """Start a registry in ``mode`` (plain, auth, tls, tlsauth) and wait until it answers /v2/."""
    if mode not in ("plain", "auth", "tls", "tlsauth"):
        raise ValueError(f"unknown registry mode {mode}")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "storage").mkdir(exist_ok=True)
    port = free_port()
    lines = [
        "version: 0.1",
        "log: {level: warn, accesslog: {disabled: true}}",
        f"storage: {{filesystem: {{rootdirectory: {workdir / 'storage'}}}, delete: {{enabled: true}}, "
        "cache: {blobdescriptor: inmemory}}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: local-test-only",
    ]
    ca = None
    if mode.startswith("tls"):
        ca, crt, key = make_ca_and_server_cert(workdir / "certs")
        lines += ["  tls:", f"    certificate: {crt}", f"    key: {key}"]
    if mode.endswith("auth"):
        htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True,  # nosec B603 B607
                                  capture_output=True, text=True).stdout
        (workdir / "htpasswd").write_text(htpasswd)
        lines += ["auth:", "  htpasswd:", "    realm: stockade-test", f"    path: {workdir / 'htpasswd'}"]
    config = workdir / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = open(workdir / "registry.log", "wb")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log,  # nosec B603
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    reg = Registry(mode=mode, port=port, workdir=workdir, process=proc, ca_cert=ca)
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry exited: {(workdir / 'registry.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{reg.url}/v2/", timeout=1, context=context)  # nosec B310
            return reg
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return reg
        except OSError:
            pass
        time.sleep(0.05)
    reg.stop()
    raise RuntimeError(f"registry on port {port} did not start")
