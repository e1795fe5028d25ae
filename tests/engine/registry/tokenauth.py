"""A real registry behind a bearer-token service, both on loopback.

Debian's docker-registry is configured with ``auth.token`` (realm, service, issuer, root certificate
bundle). The token service here is a few lines of ``http.server``: it checks basic credentials when
given, grants the scopes a client asks for (pull to anyone, push only to the test user), and signs
JWTs with ES256 and an ``x5c`` header carrying a self-signed certificate that the registry trusts.
The registry itself verifies every token, so the client's bearer flow runs against the real thing.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets
import subprocess  # nosec B404 # starts the registry binary with an argument list
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.registry import PASSWORD, REGISTRY_BIN, USER, free_port

SERVICE, ISSUER = "stockade-test-registry", "stockade-test-token-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRegistry:
    host: str
    realm: str
    process: subprocess.Popen[bytes]
    token_server: ThreadingHTTPServer
    issued: list[dict[str, object]]  # the claims of every token handed out

    def stop(self) -> None:
        self.token_server.shutdown()
        self.token_server.server_close()
        self.process.terminate()
        self.process.wait(timeout=10)


def _signing_material(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stockade test token signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (directory / "token-signer.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER)


def _jwt(key: ec.EllipticCurvePrivateKey, cert_der: bytes, claims: dict[str, object]) -> str:
    header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(cert_der).decode()]}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def start_token_registry(workdir: Path) -> TokenRegistry:
    workdir.mkdir(parents=True, exist_ok=True)
    key, cert_der = _signing_material(workdir)
    issued: list[dict[str, object]] = []
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class TokenHandler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            query = parse_qs(urlsplit(self.path).query)
            auth = self.headers.get("Authorization")
            if auth is not None and auth != expected:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            access = []
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                granted = [a for a in actions.split(",") if a == "pull" or auth == expected]
                access.append({"type": kind, "name": name, "actions": granted})
            now = int(time.time())
            claims = {"iss": ISSUER, "sub": USER if auth else "", "aud": SERVICE, "exp": now + 300,
                      "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
            issued.append(claims)
            body = json.dumps({"token": _jwt(key, cert_der, claims), "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    token_server = ThreadingHTTPServer(("127.0.0.1", 0), TokenHandler)
    threading.Thread(target=token_server.serve_forever, daemon=True).start()
    realm = f"http://127.0.0.1:{token_server.server_address[1]}/token"
    port = free_port()
    (workdir / "storage").mkdir(exist_ok=True)
    config = workdir / "config.yml"
    config.write_text("\n".join([
        "version: 0.1",
        "log: {level: warn, accesslog: {disabled: true}}",
        f"storage: {{filesystem: {{rootdirectory: {workdir / 'storage'}}}, delete: {{enabled: true}}}}",
        "http:", f"  addr: 127.0.0.1:{port}", "  secret: local-test-only",
        "auth:", "  token:", f"    realm: {realm}", f"    service: {SERVICE}", f"    issuer: {ISSUER}",
        f"    rootcertbundle: {workdir / 'token-signer.pem'}", ""]))
    log = open(workdir / "registry.log", "wb")  # noqa: SIM115 - owned by the child
    # docker-registry reads REGISTRY_* variables as configuration (REGISTRY_AUTH_FILE would be auth.file)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log,  # nosec B603
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)  # nosec B310
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return TokenRegistry(f"127.0.0.1:{port}", realm, proc, token_server, issued)
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"token registry did not start: {(workdir / 'registry.log').read_text()[-2000:]}")
