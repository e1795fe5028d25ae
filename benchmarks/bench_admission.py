"""Admission webhook under load: decisions/s and p50/p99 latency over HTTPS on loopback.

Set-up (real parts only): Debian's registry on 127.0.0.1 with the busybox fixture pushed by skopeo
and signed by ``stockade sign --key``; ``stockade admission serve`` (a child process, decisions not
logged) enforcing ``restricted`` plus "every image of this registry signed by that key"; a
certificate from ``deploy/kubernetes/make-certs.sh``. Clients: ``CLIENT_PROCESSES`` processes of
``THREADS`` threads, each thread one keep-alive HTTPS connection (as the API server keeps its
connections), posting the same AdmissionReview for a compliant Pod until ``REQUESTS`` are answered.

Cases (interleaved rounds; each sample is the wall time of one batch of ``REQUESTS`` reviews):

* ``webhook cached``: the Pod's image by digest; after the first review the verdict is cached, so
  a review is TLS + HTTP + JSON + translation + a cache lookup + evaluation (the issue's target);
* ``webhook cached, tag``: the image by tag: the verdict is cached by digest, but the tag is
  resolved at the registry on every review (one manifest GET);
* ``webhook uncached``: ``--no-cache``: every review verifies the signature at the registry;
* ``peer stdlib https``: the peer, a standard-library HTTPS server on the same transport (threading
  ``http.server``, TLS 1.3, keep-alive) that reads the body and answers a fixed "allowed" review: the
  transport's own cost, i.e. the ceiling any webhook built on it can reach;
* ``in-process``: the floor below the transport: ``AdmissionService.validate`` called directly (one
  thread, cached verdict), what one decision costs without TLS and HTTP.

``python -m benchmarks admission``. Target (issue 7): >= 500 decisions/s and p99 < 20 ms, cached.
"""

from __future__ import annotations

import http.client
import http.server
import json
import multiprocessing
import os
import shutil
import signal
import ssl
import statistics
import subprocess  # nosec B404 - the server under test and the signing CLI, argument lists
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import PYTHON, REPO, Benchmark, stockade_argv

REQUESTS = int(os.environ.get("STOCKADE_BENCH_ADMISSION_REQUESTS", "1000"))
UNCACHED_REQUESTS = max(REQUESTS // 4, 50)
CLIENT_PROCESSES, THREADS = 2, 4
SERVICE_DNS = "stockade-admission.stockade-system.svc"


# --- clients ---------------------------------------------------------------------------------------------

class _Connection(http.client.HTTPSConnection):
    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port, context=context, timeout=30)
        self._tls = context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=SERVICE_DNS)


def _client_thread(port: int, context: ssl.SSLContext, body: bytes, count: int, out: list[float]) -> None:
    conn = _Connection(port, context)
    headers = {"Content-Type": "application/json"}
    try:
        for _ in range(count):
            start = time.perf_counter()
            conn.request("POST", "/validate", body, headers)
            resp = conn.getresponse()
            answer = resp.read()
            out.append(time.perf_counter() - start)
            if resp.status != 200 or b'"allowed":true' not in answer:
                raise RuntimeError(f"unexpected answer {resp.status}: {answer[:300]!r}")
    finally:
        conn.close()


def _client_process(task: tuple[int, str, bytes, int]) -> list[float]:
    """One client process: THREADS keep-alive connections sharing ``count`` reviews."""
    port, ca, body, count = task
    context = ssl.create_default_context(cafile=ca)
    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    shares = [count // THREADS + (1 if n < count % THREADS else 0) for n in range(THREADS)]
    threads = [threading.Thread(target=_client_thread, args=(port, context, body, share, out))
               for share, out in zip(shares, latencies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [x for part in latencies for x in part]
    if len(flat) != count:
        raise RuntimeError(f"a client thread failed ({len(flat)} of {count} answered)")
    return flat


class LoadCase:
    """A fixed number of reviews from CLIENT_PROCESSES x THREADS connections; latencies kept per case."""

    def __init__(self, pool: Any, port: int, ca: Path, body: bytes, requests: int) -> None:
        self.pool, self.port, self.ca, self.body, self.requests = pool, port, str(ca), body, requests
        self.latencies: list[float] = []
        self.rates: list[float] = []

    def __call__(self) -> float:
        per = [self.requests // CLIENT_PROCESSES + (1 if n < self.requests % CLIENT_PROCESSES else 0)
               for n in range(CLIENT_PROCESSES)]
        start = time.perf_counter()
        results = self.pool.map(_client_process, [(self.port, self.ca, self.body, n) for n in per])
        elapsed = time.perf_counter() - start
        self.latencies += [x for r in results for x in r]
        self.rates.append(self.requests / elapsed)
        return elapsed

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        return {"requests": len(lat), "decisions_per_s_median": statistics.median(self.rates),
                "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3}


# --- servers ---------------------------------------------------------------------------------------------

class _FixedAnswer(http.server.BaseHTTPRequestHandler):
    """The peer: read the review, answer "allowed" for its uid, nothing else."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as the webhook: no 40 ms delayed-ACK stall per keep-alive answer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        uid = json.loads(body)["request"]["uid"]
        answer = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                             "response": {"uid": uid, "allowed": True}}, separators=(",", ":")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


class _PeerServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # as the webhook's: the clients connect at once (the default 5 drops SYNs)


def _peer_server_main(certs: str, port_file: str) -> None:
    """Run in a child process (its own GIL, like the webhook) until terminated."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{certs}/tls.crt", f"{certs}/tls.key")
    server = _PeerServer(("127.0.0.1", 0), _FixedAnswer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def _start_webhook(work: Path, certs: Path, policy: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "STOCKADE_CONFIG": str(work / "config.toml"),
           "STOCKADE_PASSWORD": "pw"}
    root = work / f"root-{len(list(work.glob('root-*')))}"
    argv = stockade_argv("--root", str(root), "admission", "serve", "--policy", str(policy),
                         "--tls-cert", str(certs / "tls.crt"), "--tls-key", str(certs / "tls.key"),
                         "--address", "127.0.0.1", "--port", "0", "--log-decisions", "none",
                         "--shutdown-grace", "0", *extra)
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)  # nosec B603
    assert proc.stderr is not None
    for line in proc.stderr:
        event = json.loads(line)
        if event.get("msg") == "listening":
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, int(event["port"])
    raise RuntimeError(f"the webhook did not start (exit {proc.wait()})")


def _pod_review(image: str) -> bytes:
    spec = {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": image, "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
                            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}}]}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "shop", "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-5d8f7", "namespace": "shop",
                                                                   "labels": {"app": "web"}}, "spec": spec},
        "oldObject": None, "dryRun": False}}).encode()


def _in_process(policy: Path, work: Path, body: bytes, count: int) -> dict[str, float]:
    """The floor: ``AdmissionService.validate`` in this process, verdict cached, no transport."""
    from engine.config import Paths, load_config
    from policies import load_policy
    from stockade.admission import build_service

    os.environ["STOCKADE_CONFIG"] = str(work / "config.toml")
    service = build_service(load_policy(str(policy)), load_config(), Paths.default(root=work / "root-inproc"),
                            log_decisions="none")
    try:
        status, answer = service.validate(body)
        assert status == 200 and b'"allowed":true' in answer, answer
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            service.validate(body)
            samples.append(time.perf_counter() - start)
    finally:
        service.close()
    samples.sort()
    return {"requests": count, "p50_ms": samples[count // 2] * 1e3,
            "p99_ms": samples[int(count * 0.99)] * 1e3, "decisions_per_s_one_thread": 1 / statistics.mean(samples)}


def main() -> None:
    from tests.support.images import make_busybox_layout, skopeo_push
    from tests.support.registry import start_registry

    work = Path(tempfile.mkdtemp(prefix="bench-admission-"))
    (work / "config.toml").write_text("")
    registry = start_registry(work / "registry")
    processes: list[subprocess.Popen[bytes]] = []
    peer: multiprocessing.Process | None = None
    pool = multiprocessing.get_context("fork").Pool(CLIENT_PROCESSES)
    try:
        subprocess.run(["sh", str(REPO / "deploy/kubernetes/make-certs.sh"), str(work / "certs")],  # nosec B603 B607
                       check=True, capture_output=True)
        certs = work / "certs"
        layout = make_busybox_layout(work / "image")
        image = f"{registry.host}/bench/app:1.0"
        digest = skopeo_push(layout, "busybox", image)
        env = {**os.environ, "PYTHONPATH": str(REPO), "STOCKADE_PASSWORD": "pw",
               "STOCKADE_CONFIG": str(work / "config.toml")}
        subprocess.run(stockade_argv("key", "generate", "--output-key-prefix", str(work / "cosign")),  # nosec B603
                       check=True, capture_output=True, env=env)
        subprocess.run(stockade_argv("sign", "--key", str(work / "cosign.key"), image),  # nosec B603
                       check=True, capture_output=True, env=env)
        policy = work / "policy.yaml"
        policy.write_text(f"apiVersion: stockade.dev/v1\nkind: Policy\nmetadata: {{name: bench, revision: 1}}\n"
                          f"spec:\n  profile: restricted\n  signatures:\n    - images: [\"{registry.host}/**\"]\n"
                          f"      keys: [{{path: {work / 'cosign.pub'}}}]\n")
        by_digest = _pod_review(f"{registry.host}/bench/app@{digest}")
        by_tag = _pod_review(image)

        cached, cached_port = _start_webhook(work, certs, policy)
        uncached, uncached_port = _start_webhook(work, certs, policy, "--no-cache")
        processes += [cached, uncached]
        port_file = work / "peer.port"
        peer = multiprocessing.get_context("fork").Process(target=_peer_server_main,
                                                           args=(str(certs), str(port_file)), daemon=True)
        peer.start()
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        cases = {
            "webhook cached": LoadCase(pool, cached_port, certs / "ca.crt", by_digest, REQUESTS),
            "webhook cached, tag": LoadCase(pool, cached_port, certs / "ca.crt", by_tag, REQUESTS),
            "webhook uncached": LoadCase(pool, uncached_port, certs / "ca.crt", by_digest, UNCACHED_REQUESTS),
            "peer stdlib https": LoadCase(pool, int(port_file.read_text()), certs / "ca.crt", by_digest, REQUESTS),
        }
        bench = Benchmark("admission", f"{REQUESTS} AdmissionReviews (uncached: {UNCACHED_REQUESTS}) from "
                                       f"{CLIENT_PROCESSES}x{THREADS} keep-alive HTTPS clients on loopback")
        for name, case in cases.items():
            bench.case(name, case)
        stats = bench.run(rounds=int(os.environ.get("STOCKADE_BENCH_ROUNDS", "5")), warmup=1)
        for case in cases.values():  # the warm-up round is not reported
            del case.latencies[:case.requests]
            del case.rates[:1]
        floor = _in_process(policy, work, by_digest, 2000)
        summaries = {name: case.summary() for name, case in cases.items()}
        print(f"  {'case':<22} {'decisions/s':>12} {'p50 ms':>8} {'p99 ms':>8}")
        for name, s in summaries.items():
            print(f"  {name:<22} {s['decisions_per_s_median']:>12.0f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f}")
        print(f"  {'in-process (1 thread)':<22} {floor['decisions_per_s_one_thread']:>12.0f} "
              f"{floor['p50_ms']:>8.2f} {floor['p99_ms']:>8.2f}")
        target = summaries["webhook cached"]
        met = target["decisions_per_s_median"] >= 500 and target["p99_ms"] < 20
        print(f"  target (>= 500/s, p99 < 20 ms, cached): {'met' if met else 'NOT met'}")
        bench.report(stats, [("webhook cached", "peer stdlib https"), ("webhook cached, tag", "webhook cached"),
                             ("webhook uncached", "webhook cached")], unit="ms",
                     extra={"load": summaries, "in_process": floor, "target_met": met,
                            "clients": f"{CLIENT_PROCESSES} processes x {THREADS} threads, keep-alive",
                            "python": PYTHON, "cpus": os.cpu_count()})
    finally:
        pool.terminate()
        for proc in processes:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        if peer is not None:
            peer.terminate()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
