"""Admission webhook under load: decisions/s and p50/p99 latency over HTTPS on loopback.

Set-up (real parts only): Debian's registry on 127.0.0.1 with the busybox fixture pushed by skopeo
and signed by ``stockade sign --key``; ``stockade admission serve`` (a child process, decisions not
logged) enforcing ``restricted`` plus "every image of this registry signed by that key"; a
certificate from ``deploy/kubernetes/make-certs.sh``. Clients: ``CLIENT_PROCESSES`` processes of
``THREADS`` threads, each thread one keep-alive HTTPS connection (as the API server keeps its
connections), posting the same AdmissionReview for a compliant Pod until ``REQUESTS`` are answered.

Cases (interleaved rounds; each sample is the wall time of one batch of ``REQUESTS`` reviews):

* ``webhook cached``: the Pod's image by digest; after the first review the verdict is cached, so
  a review is TLS + HTTP + JSON + translation + a cache lookup + evaluation. Closed loop: eight
  reviews always in flight, so this is the most the server answers, and its latency is mostly
  queueing behind the other seven;
* ``webhook cached @500/s``: the same reviews sent on a fixed schedule, 500/s in all (the API server
  sends when Pods are created, not when the last answer came back); latency counts from each
  review's scheduled time, so a server that falls behind pays for it. The issue's target is this
  case's p99 (< 20 ms) with the closed loop above 500/s;
* ``webhook cached, tag``: the image by tag: the verdict is cached by digest, but the tag is
  resolved at the registry on every review (one manifest GET);
* ``webhook uncached``: ``--no-cache``: every review verifies the signature at the registry;
* ``peer stdlib https``: the peer, a standard-library HTTPS server on the same transport (threading
  ``http.server``, TLS 1.3, keep-alive) that reads the body and answers a fixed "allowed" review: the
  transport's own cost, i.e. the ceiling any webhook built on it can reach;
* ``in-process``: the floor below the transport: ``AdmissionService.validate`` called directly (one
  thread, cached verdict), what one decision costs without TLS and HTTP.

``python -m benchmarks admission``. Target (issue 7): >= 500 decisions/s and p99 < 20 ms, cached.
``STOCKADE_BENCH_ADMISSION_REQUESTS`` (default 1000) and ``STOCKADE_BENCH_ROUNDS`` (5) scale it.
"""

from __future__ import annotations

import http.server
import json
import multiprocessing
import os
import shutil
import signal
import ssl
import statistics
import subprocess  # nosec B404 # the server under test and the signing CLI, argument lists
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import PYTHON, REPO, Benchmark, stockade_argv

REQUESTS = int(os.environ.get("STOCKADE_BENCH_ADMISSION_REQUESTS", "1000"))
UNCACHED_REQUESTS = max(REQUESTS // 4, 50)
CLIENT_PROCESSES, THREADS = 2, 4


# --- clients ---------------------------------------------------------------------------------------------

def _client_thread(port: int, context: ssl.SSLContext, body: bytes, schedule: list[float] | None, count: int,
                   out: list[float]) -> None:
    """``count`` reviews on one keep-alive connection: back to back, or each at its ``schedule`` time
    (then latency counts from the scheduled time, so a server that falls behind is not flattered)."""
    from tests.admission.webhook import ServiceConnection

    conn = ServiceConnection(port, context, timeout=30)
    headers = {"Content-Type": "application/json"}
    try:
        conn.connect()  # the API server keeps its connections: latencies are of reviews, not handshakes
        for n in range(count):
            if schedule is not None:
                start = schedule[n]
                time.sleep(max(0.0, start - time.monotonic()))
            else:
                start = time.monotonic()
            conn.request("POST", "/validate", body, headers)
            resp = conn.getresponse()
            answer = resp.read()
            out.append(time.monotonic() - start)
            if resp.status != 200 or b'"allowed":true' not in answer:
                raise RuntimeError(f"unexpected answer {resp.status}: {answer[:300]!r}")
    finally:
        conn.close()


def _client_process(task: tuple[int, str, bytes, int, int, float, float]) -> tuple[list[float], float]:
    """One client process: THREADS keep-alive connections sharing ``count`` reviews; with ``rate``
    (reviews/s over all clients) each connection sends on a fixed schedule starting at ``t0``."""
    port, ca, body, count, index, rate, t0 = task
    context = ssl.create_default_context(cafile=ca)
    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    shares = [count // THREADS + (1 if n < count % THREADS else 0) for n in range(THREADS)]
    connections = CLIENT_PROCESSES * THREADS
    threads = []
    for n, (share, out) in enumerate(zip(shares, latencies)):
        schedule = None
        if rate:
            slot = index * THREADS + n  # connections take turns: one review every 1/rate s in all
            schedule = [t0 + (slot + k * connections) / rate for k in range(share)]
        threads.append(threading.Thread(target=_client_thread, args=(port, context, body, schedule, share, out)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [x for part in latencies for x in part]
    if len(flat) != count:
        raise RuntimeError(f"a client thread failed ({len(flat)} of {count} answered)")
    return flat, time.monotonic()


class LoadCase:
    """A fixed number of reviews from CLIENT_PROCESSES x THREADS connections, as fast as they are
    answered or paced at ``rate`` reviews/s in all; latencies kept per case."""

    def __init__(self, pool: Any, port: int, ca: Path, body: bytes, requests: int, rate: float = 0.0) -> None:
        self.pool, self.port, self.ca, self.body, self.requests = pool, port, str(ca), body, requests
        self.rate = rate
        self.latencies: list[float] = []
        self.rates: list[float] = []
        self.round_p99: list[float] = []

    def __call__(self) -> float:
        per = [self.requests // CLIENT_PROCESSES + (1 if n < self.requests % CLIENT_PROCESSES else 0)
               for n in range(CLIENT_PROCESSES)]
        # the clients start and make their TLS connections before the first scheduled review (on a
        # loaded machine 0.3 s was not always enough, and a late client counts against the server)
        t0 = time.monotonic() + 1.0
        start = time.perf_counter()
        results = self.pool.map(_client_process, [(self.port, self.ca, self.body, count, index, self.rate, t0)
                                                  for index, count in enumerate(per)])
        elapsed = time.perf_counter() - start
        batch = sorted(x for r, _ in results for x in r)
        self.latencies += batch
        self.round_p99.append(batch[int(len(batch) * 0.99)] * 1e3)
        # paced: the rate achieved from the first scheduled review to the last answer
        self.rates.append(self.requests / (max(done for _, done in results) - t0 if self.rate else elapsed))
        return elapsed

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        return {"requests": len(lat), "decisions_per_s_median": statistics.median(self.rates),
                "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3,
                "p99_ms_per_round": [round(x, 2) for x in self.round_p99]}


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
    """The AdmissionReview the tests send for a compliant Pod (as a ReplicaSet would create it)."""
    from tests.admission.webhook import compliant_pod_spec, review, workload

    pod = workload("Pod", compliant_pod_spec(image), name="web-5d8f7", namespace="shop")
    return json.dumps(review(pod, namespace="shop")).encode()


def _in_process(policy: Path, work: Path, body: bytes, count: int) -> dict[str, float]:
    """The floor: ``AdmissionService.validate`` in this process, verdict cached, no transport."""
    from engine.config import Paths, load_config
    from policies import load_policy
    from stockade.admission import build_service

    # load_config(FILE), not STOCKADE_CONFIG: benchmarks share one process, and an environment
    # variable left pointing into this run's (deleted) work directory broke the next benchmark.
    service = build_service(load_policy(str(policy)), load_config(work / "config.toml"),
                            Paths.default(root=work / "root-inproc"), log_decisions="none")
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
            "webhook cached @500/s": LoadCase(pool, cached_port, certs / "ca.crt", by_digest, REQUESTS, rate=500),
            "webhook cached, tag": LoadCase(pool, cached_port, certs / "ca.crt", by_tag, REQUESTS),
            "webhook uncached": LoadCase(pool, uncached_port, certs / "ca.crt", by_digest, UNCACHED_REQUESTS),
            "peer stdlib https": LoadCase(pool, int(port_file.read_text()), certs / "ca.crt", by_digest, REQUESTS),
        }
        bench = Benchmark("admission", f"{REQUESTS} AdmissionReviews (uncached: {UNCACHED_REQUESTS}) from "
                                       f"{CLIENT_PROCESSES}x{THREADS} keep-alive HTTPS clients on loopback")
        for name, case in cases.items():
            bench.case(name, case)
        load_before = os.getloadavg()
        stats = bench.run(rounds=int(os.environ.get("STOCKADE_BENCH_ROUNDS", "5")), warmup=1)
        load_after = os.getloadavg()
        for case in cases.values():  # the warm-up round is not reported
            del case.latencies[:case.requests]
            del case.rates[:1]
            del case.round_p99[:1]
        floor = _in_process(policy, work, by_digest, 2000)
        summaries = {name: case.summary() for name, case in cases.items()}
        print(f"  {'case':<24} {'decisions/s':>12} {'p50 ms':>8} {'p99 ms':>8}")
        for name, s in summaries.items():
            print(f"  {name:<24} {s['decisions_per_s_median']:>12.0f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f}"
                  f"   p99 per round {s['p99_ms_per_round']}")
        print(f"  {'in-process (1 thread)':<24} {floor['decisions_per_s_one_thread']:>12.0f} "
              f"{floor['p50_ms']:>8.2f} {floor['p99_ms']:>8.2f}")
        paced, flat_out = summaries["webhook cached @500/s"], summaries["webhook cached"]
        met = flat_out["decisions_per_s_median"] >= 500 and paced["p99_ms"] < 20
        print(f"  target (cached: >= 500/s flat out; p99 < 20 ms at 500/s): {'met' if met else 'NOT met'}"
              f" (load average {load_before[0]:.1f} before, {load_after[0]:.1f} after: the machine is shared)")
        bench.report(stats, [("webhook cached", "peer stdlib https"), ("webhook cached, tag", "webhook cached"),
                             ("webhook uncached", "webhook cached")], unit="ms",
                     extra={"load": summaries, "in_process": floor, "target_met": met,
                            "clients": f"{CLIENT_PROCESSES} processes x {THREADS} threads, keep-alive",
                            "python": PYTHON, "cpus": os.cpu_count(),
                            "load_average_before_after": [load_before, load_after]})
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
