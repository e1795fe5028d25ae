"""The webhook as an HTTPS endpoint: bad requests get clear 4xx answers (or a well-formed denial once a
uid is known), TLS below 1.2 is refused, connections are kept alive, health and readiness, failing
closed when the registry is unreachable or too slow, and the process's exit codes."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.admission.conftest import Images, write_policy
from tests.admission.webhook import Webhook, compliant_pod_spec, review, start_webhook, workload
from tests.support.cli import stockade
from tests.support.registry import free_port

JSON = {"Content-Type": "application/json"}
POD = workload("Pod", compliant_pod_spec("docker.io/library/busybox:1.36"))


def _error(status: int, body: bytes) -> str:
    doc = json.loads(body)
    assert set(doc) == {"error"}, doc
    return str(doc["error"])


# --- malformed requests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body, status, says", [
    (b"{not json", 400, "not JSON"),
    (b"\xff\xfe{}", 400, "not UTF-8 JSON"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "not JSON"),
    (b"[]", 400, "expected a JSON object"),
    (json.dumps({**review(POD), "apiVersion": "admission.k8s.io/v1beta1"}).encode(), 400, "admission.k8s.io/v1"),
    (json.dumps({**review(POD), "kind": "AdmissionResponse"}).encode(), 400, "kind AdmissionReview"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), 400, "no request"),
    (json.dumps({**review(POD), "request": {**review(POD)["request"], "uid": ""}}).encode(), 400, "request.uid"),
    (json.dumps({**review(POD), "request": {**review(POD)["request"], "uid": "x" * 500}}).encode(), 400, "request.uid"),
])
def test_what_is_not_an_admission_review_gets_a_4xx(webhook: Webhook, body: bytes, status: int, says: str) -> None:
    got, headers, answer = webhook.request("POST", "/validate", body, JSON)
    assert got == status and headers["content-type"] == "application/json"
    assert says in _error(got, answer)


@pytest.mark.parametrize("change, says", [
    (lambda r: r.pop("object"), "request.object is missing"),
    (lambda r: r.update(object=[1, 2]), "request.object is missing or not an object"),
    (lambda r: r.update(kind="Pod"), "request.kind.kind is missing"),
    (lambda r: r.update(operation="PATCH"), "request.operation 'PATCH'"),
    (lambda r: r.update(dryRun="yes"), "request.dryRun"),
    (lambda r: r["object"]["spec"].update(containers=[{"name": "app"}]), "a container needs an image"),
    (lambda r: r["object"].update(spec="nothing"), "Pod has no pod spec here"),
])
def test_a_malformed_request_with_a_uid_is_denied_in_a_well_formed_review(webhook: Webhook, change: Any,
                                                                         says: str) -> None:
    sent = review(json.loads(json.dumps(POD)))
    change(sent["request"])
    resp = webhook.post(sent)["response"]
    assert resp["uid"] == sent["request"]["uid"] and resp["allowed"] is False
    assert resp["status"]["code"] == 400 and resp["status"]["reason"] == "BadRequest"
    assert says in resp["status"]["message"]


def test_a_malformed_image_reference_is_a_violation_of_that_container(webhook: Webhook) -> None:
    pod = workload("Pod", compliant_pod_spec("Registry.Example/UPPER:case"))
    resp = webhook.post(review(pod))["response"]
    assert resp["allowed"] is False and resp["status"]["code"] == 403
    assert "containers[app]: [input] image.reference" in resp["status"]["message"]


def test_an_oversized_body_is_refused_unread_and_the_connection_closed(webhook: Webhook) -> None:
    conn = webhook.connection()
    conn.putrequest("POST", "/validate")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(3 * 1024 * 1024 + 1))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and resp.getheader("Connection") == "close"
    assert "at most 3145728" in _error(413, resp.read())
    conn.close()


@pytest.mark.parametrize("method, path, headers, status", [
    ("POST", "/validate", {"Content-Type": "text/plain"}, 415),
    ("POST", "/validate", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, 411),
    ("POST", "/validate", {"Content-Type": "application/json", "Content-Length": "12x"}, 400),
    ("POST", "/mutate", JSON, 404),
    ("GET", "/validate", {}, 405),
    ("PUT", "/validate", JSON, 405),
    ("BREW", "/metrics", {}, 405),
    ("DELETE", "/healthz", {}, 405),
])
def test_wrong_path_method_or_content_type(webhook: Webhook, method: str, path: str, headers: dict[str, str],
                                           status: int) -> None:
    body = json.dumps(review(POD)).encode() if "Content-Length" not in headers and method != "GET" else None
    conn = webhook.connection()
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    if body is not None and "Transfer-Encoding" not in headers:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body if "Transfer-Encoding" not in headers else b"0\r\n\r\n")
    resp = conn.getresponse()
    assert resp.status == status
    _error(status, resp.read())
    if status == 405:
        assert resp.getheader("Allow") in ("POST", "GET, HEAD")
    conn.close()
    assert webhook.metric("stockade_admission_rejected_requests_total", code=str(status)) >= 1


# --- transport --------------------------------------------------------------------------------------------

def test_keep_alive_serves_many_reviews_on_one_connection(webhook: Webhook) -> None:
    conn = webhook.connection()
    webhook.post(review(POD), conn)
    first = conn.sock
    for _ in range(3):
        assert webhook.post(review(POD), conn)["response"]["allowed"] is True
    assert conn.sock is first
    conn.close()


def test_tls_below_1_2_is_refused(webhook: Webhook) -> None:
    with warnings.catch_warnings():  # the client side of this test is deprecated on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        old = webhook.context(minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)
    with socket.create_connection(("127.0.0.1", webhook.port)) as raw:
        with pytest.raises(ssl.SSLError):
            old.wrap_socket(raw, server_hostname="stockade-admission.stockade-system.svc")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = webhook.context(minimum_version=version, maximum_version=version)
        with socket.create_connection(("127.0.0.1", webhook.port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="stockade-admission.stockade-system.svc") as tls:
                assert tls.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


def test_the_certificate_is_for_the_service_name_and_a_client_without_the_ca_is_refused(webhook: Webhook) -> None:
    with socket.create_connection(("127.0.0.1", webhook.port)) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="stockade-admission.stockade-system.svc")
    with socket.create_connection(("127.0.0.1", webhook.port)) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            webhook.context().wrap_socket(raw, server_hostname="other.stockade-system.svc")


def test_health_and_readiness(webhook: Webhook) -> None:
    assert webhook.request("GET", "/healthz")[0::2] == (200, b"ok\n")
    status, _, body = webhook.request("GET", "/readyz")
    assert status == 200 and body == b"ready: policy webhook-test@3\n"
    assert webhook.request("HEAD", "/healthz")[0::2] == (200, b"")


# --- failing closed -----------------------------------------------------------------------------------------

class _SilentRegistry:
    """Accepts TCP connections on loopback and never answers: a registry that hangs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(scope="module")
def silent_registry() -> Iterator[_SilentRegistry]:
    reg = _SilentRegistry()
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, certs: Path, images: Images,
           silent_registry: _SilentRegistry) -> Iterator[Webhook]:
    """Every image needs a signature (``127.0.0.1:*/**``), with a one-second deadline."""
    tmp = tmp_path_factory.mktemp("strict")
    server = start_webhook(tmp, certs, write_policy(tmp / "policy", images, "127.0.0.1:*/**"), "--deadline", "1")
    yield server
    server.stop()


def test_an_unreachable_registry_fails_closed(strict: Webhook) -> None:
    before = strict.metric("stockade_admission_decisions_total", result="error", kind="Pod", dry_run="false")
    pod = workload("Pod", compliant_pod_spec(f"127.0.0.1:{free_port()}/app/web:1"))
    resp = strict.post(review(pod))["response"]
    assert resp["allowed"] is False and resp["status"]["code"] == 403
    (line,) = [v for v in resp["status"]["message"].splitlines() if v.startswith("- ")]
    assert "[signatures] signature verification failed" in line and "cannot reach" in line
    after = strict.metric("stockade_admission_decisions_total", result="error", kind="Pod", dry_run="false")
    assert after - before == 1


def test_a_registry_slower_than_the_deadline_fails_closed_with_the_reason(strict: Webhook, images: Images,
                                                                         silent_registry: _SilentRegistry) -> None:
    pod = workload("Pod", compliant_pod_spec(f"127.0.0.1:{silent_registry.port}/app/web:1"))
    pod["spec"]["containers"].append({**pod["spec"]["containers"][0], "name": "signed", "image": images.signed})
    resp = strict.post(review(pod))["response"]
    assert resp["allowed"] is False
    lines = [v[2:] for v in resp["status"]["message"].splitlines() if v.startswith("- ")]
    assert len(lines) == 1 and lines[0].startswith("containers[app]: [signatures] signature verification failed")
    assert "did not finish within" in lines[0] and "deadline" in lines[0]


def test_an_internal_error_is_a_well_formed_denial_not_a_500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.config import Paths, load_config
    from policies import builtin_policy
    from stockade.admission import build_service

    service = build_service(builtin_policy("restricted"), load_config(), Paths.default(root=tmp_path / "root"))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(service.admitter, "review", broken)
    sent = review(POD)
    status, body = service.validate(json.dumps(sent).encode())
    resp = json.loads(body)["response"]
    assert status == 200 and resp["uid"] == sent["request"]["uid"] and resp["allowed"] is False
    assert resp["status"]["code"] == 500 and "internal error" in resp["status"]["message"]
    assert "fail closed" in resp["status"]["message"]
    assert service.decisions.value(result="error", kind="Pod", dry_run="false") == 1
    service.close()


# --- the process ----------------------------------------------------------------------------------------------

def test_readiness_follows_the_trusted_root_and_sigterm_exits_0(tmp_path: Path, certs: Path) -> None:
    from trust.trustroot import public_good_path

    root = tmp_path / "trusted_root.json"
    shutil.copy(public_good_path(), root)
    server = start_webhook(tmp_path, certs, "restricted", "--trusted-root", str(root))
    try:
        assert server.request("GET", "/readyz")[0] == 200
        root.unlink()
        status, _, body = server.request("GET", "/readyz")
        assert status == 503 and body.startswith(b"trusted root ") and b"unreadable" in body
        assert server.request("GET", "/healthz")[0] == 200  # alive, just not ready
    finally:
        assert server.stop() == 0
    assert [e["msg"] for e in server.log][-2:] == ["stopping", "stopped"]


def test_sigint_exits_130(tmp_path: Path, certs: Path) -> None:
    server = start_webhook(tmp_path, certs, "baseline")
    assert server.stop(signal.SIGINT) == 130


@pytest.mark.parametrize("change, says", [
    ({"--tls-cert": "/nonexistent.crt"}, "cannot load --tls-cert /nonexistent.crt"),
    ({"--policy": "/nonexistent/policy.yaml"}, "/nonexistent/policy.yaml: cannot read policy"),
    ({"--port": "70000"}, "'70000' is not a TCP port"),
    ({"--deadline": "soon"}, "'soon' is not a number of seconds"),
])
def test_configuration_errors_exit_2(certs: Path, change: dict[str, str], says: str) -> None:
    flags = {"--policy": "restricted", "--tls-cert": str(certs / "tls.crt"), "--tls-key": str(certs / "tls.key"),
             "--address": "127.0.0.1", "--port": "0", **change}
    r = stockade("admission", "serve", *[x for pair in flags.items() for x in pair], timeout=60)
    assert r.returncode == 2 and says in r.stderr, r.stderr


def test_an_address_in_use_exits_1(certs: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = stockade("admission", "serve", "--policy", "restricted", "--tls-cert", certs / "tls.crt",
                     "--tls-key", certs / "tls.key", "--address", "127.0.0.1", "--port", str(port), timeout=60)
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_sigterm_fails_readiness_first_and_keeps_serving_through_the_grace_period(tmp_path: Path,
                                                                                certs: Path) -> None:
    server = start_webhook(tmp_path, certs, "restricted", "--shutdown-grace", "30")
    assert server.request("GET", "/readyz")[0] == 200
    server.process.send_signal(signal.SIGTERM)
    while not any(e.get("msg") == "stopping" for e in server.log):
        assert server.process.poll() is None
        threading.Event().wait(0.05)
    assert server.request("GET", "/readyz")[0::2] == (503, b"shutting down\n")
    assert server.post(review(POD))["response"]["allowed"] is True  # in-flight traffic still answered
    assert server.stop() == 0  # a second SIGTERM ends the grace period early


def test_a_rotated_certificate_is_served_without_a_restart(tmp_path: Path) -> None:
    from tests.admission.webhook import make_certs

    live = make_certs(tmp_path / "live")
    server = start_webhook(tmp_path, live, "restricted")
    try:
        assert server.request("GET", "/healthz")[0] == 200
        rotated = make_certs(tmp_path / "rotated")  # a new CA too: the old one no longer verifies
        for name in ("tls.key", "tls.crt"):
            (live / f"{name}.new").write_bytes((rotated / name).read_bytes())
            (live / f"{name}.new").rename(live / name)
        with pytest.raises(ssl.SSLCertVerificationError):
            server.request("GET", "/healthz")  # the client still trusts the old CA
        shutil.copy(rotated / "ca.crt", live / "ca.crt")
        assert server.request("GET", "/healthz")[0] == 200
    finally:
        server.stop()


def test_connections_beyond_the_limit_are_closed_at_once(tmp_path: Path, certs: Path) -> None:
    server = start_webhook(tmp_path, certs, "restricted", "--max-connections", "2")
    try:
        held = [server.connection() for _ in range(2)]
        for conn in held:
            conn.connect()
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            server.request("GET", "/healthz")
        held[0].close()
        status = None
        for _ in range(100):  # the slot frees once the server sees the close
            try:
                status = server.request("GET", "/healthz")[0]
                break
            except (ssl.SSLError, ConnectionError, OSError):
                threading.Event().wait(0.05)
        assert status == 200
        held[1].close()
    finally:
        server.stop()
