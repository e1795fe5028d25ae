"""The real ``stockade admission serve`` in a child process, and an HTTPS client for it.

The server gets its certificate from ``deploy/kubernetes/make-certs.sh`` (the recipe the README gives
operators) and is reached on 127.0.0.1 while the client verifies the Service's DNS name, as the API
server does. ``--port 0`` lets the kernel pick the port; the server's JSON ``listening`` log line says
which.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import ssl
import subprocess  # nosec B404 # runs our own CLI and the repository's certificate script, argument lists
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.support.cli import REPO

SERVICE_DNS = "stockade-admission.stockade-system.svc"
MAKE_CERTS = REPO / "deploy" / "kubernetes" / "make-certs.sh"
_SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def make_certs(directory: Path) -> Path:
    """Run the deployment's certificate script into ``directory``; return it (ca.crt, tls.crt, tls.key)."""
    subprocess.run(["sh", str(MAKE_CERTS), str(directory)], check=True, capture_output=True)  # nosec B603 B607
    return directory


class ServiceConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 that verifies the certificate for the Service's DNS name (tests, benchmark)."""

    def __init__(self, port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__("127.0.0.1", port, context=context, timeout=timeout)
        self._tls = context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=SERVICE_DNS)


@dataclass
class Webhook:
    process: subprocess.Popen[bytes]
    port: int
    certs: Path
    root: Path
    log: list[dict[str, Any]] = field(default_factory=list)
    reader: threading.Thread | None = None  # fills ``log`` from the server's stderr

    def context(self, **options: Any) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
        for name, value in options.items():
            setattr(ctx, name, value)
        return ctx

    def connection(self, timeout: float = 30.0) -> http.client.HTTPSConnection:
        return ServiceConnection(self.port, self.context(), timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                conn: http.client.HTTPSConnection | None = None) -> tuple[int, dict[str, str], bytes]:
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            if own:
                conn.close()

    def post(self, review: dict[str, Any], conn: http.client.HTTPSConnection | None = None) -> dict[str, Any]:
        """POST a review; return the AdmissionReview answer (asserting the transport said 200)."""
        status, headers, body = self.request("POST", "/validate", json.dumps(review).encode(),
                                             {"Content-Type": "application/json"}, conn)
        assert status == 200, body
        assert headers["content-type"] == "application/json"
        return json.loads(body)

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """``/metrics`` parsed: (name, labels) -> value."""
        status, headers, body = self.request("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        out = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or not line:
                continue
            m = _SAMPLE.match(line)
            assert m, f"not an exposition line: {line!r}"
            labels = frozenset(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
        return out

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, frozenset(labels.items())), 0.0)

    def logged(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        """The first log entry ``wanted`` accepts, waiting for it: the server logs a decision after
        it answers, and a thread reads its stderr, so the line may arrive after the response."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((e for e in list(self.log) if wanted(e)), None)
            if found is not None:
                return found
            assert time.monotonic() < deadline and self.process.poll() is None, f"not logged: {self.log}"
            time.sleep(0.02)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.reader is not None:
            self.reader.join(timeout=30)  # every line the server wrote is in ``log`` once stopped
        return self.process.returncode


def start_webhook(tmp: Path, certs: Path, policy: Path | str, *extra: str) -> Webhook:
    """Start ``stockade admission serve`` with its own store root (the cache lives there)."""
    root = tmp / "root"
    config = tmp / "config.toml"
    config.write_text("")
    env = {**os.environ, "PYTHONPATH": str(REPO), "STOCKADE_CONFIG": str(config)}
    argv = [sys.executable, "-m", "stockade", "--root", str(root), "admission", "serve", "--policy", str(policy),
            "--tls-cert", str(certs / "tls.crt"), "--tls-key", str(certs / "tls.key"), "--port", "0",
            "--address", "127.0.0.1", "--shutdown-grace", "0", *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)  # nosec B603
    log: list[dict[str, Any]] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            try:
                log.append(json.loads(raw))
            except ValueError:
                log.append({"msg": raw.decode(errors="replace").rstrip()})
            if log[-1].get("msg") == "listening":
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ready.wait(60)
    listening = [e for e in log if e.get("msg") == "listening"]
    if not listening:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the webhook did not start: {log}")
    return Webhook(proc, int(listening[0]["port"]), certs, root, log, reader)


def compliant_pod_spec(image: str, **container: Any) -> dict[str, Any]:
    """A pod spec ``restricted`` admits: non-root, seccomp, no escalation, read-only root, ALL dropped."""
    return {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": image,
                            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}, **container}]}


WORKLOAD = {"Pod": ("", "v1", "pods"), "Deployment": ("apps", "v1", "deployments"),
            "StatefulSet": ("apps", "v1", "statefulsets"), "DaemonSet": ("apps", "v1", "daemonsets"),
            "ReplicaSet": ("apps", "v1", "replicasets"), "Job": ("batch", "v1", "jobs"),
            "CronJob": ("batch", "v1", "cronjobs"), "ConfigMap": ("", "v1", "configmaps")}


def workload(kind: str, pod_spec: dict[str, Any], name: str = "w", namespace: str = "default") -> dict[str, Any]:
    """A workload object of ``kind`` whose pods have ``pod_spec``."""
    group, version, _ = WORKLOAD[kind]
    meta = {"name": name, "namespace": namespace}
    api = f"{group}/{version}" if group else version
    if kind == "Pod":
        return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": pod_spec}
    template = {"metadata": {"labels": {"app": name}}, "spec": pod_spec}
    if kind == "CronJob":
        return {"apiVersion": api, "kind": kind, "metadata": meta,
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}
    return {"apiVersion": api, "kind": kind, "metadata": meta,
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}}


def review(obj: Any, *, kind: str | None = None, operation: str = "CREATE", dry_run: bool = False,
           old: Any = None, sub_resource: str | None = None, uid: str | None = None,
           namespace: str = "default") -> dict[str, Any]:
    """An AdmissionReview v1 as the API server sends it for ``obj``."""
    kind = kind or obj["kind"]
    group, version, resource = WORKLOAD[kind]
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()), "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "name": (obj or {}).get("metadata", {}).get("name", ""), "namespace": namespace, "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": dry_run, "options": None}
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
