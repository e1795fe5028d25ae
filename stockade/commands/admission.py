"""``stockade admission serve``: the Kubernetes validating admission webhook (README "Kubernetes
admission webhook").

Exit codes: 0 after SIGTERM (a clean shutdown: readiness fails first, then in-flight reviews finish),
130 after SIGINT, 1 when the server cannot run (address in use), 2 for a usage or configuration
error (bad flag, invalid policy, unreadable certificate or key, unusable trusted root or policy key).

Logs are JSON lines on stderr: one per decision (``--log-decisions``), start, stop and errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from engine.errors import StockadeError, UsageError
from stockade.context import Context

# Bind every interface by default: the API server reaches the webhook through its Service.
ALL_INTERFACES = "0.0.0.0"  # nosec B104 # a webhook must be reachable from outside its pod
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("admission", help="the Kubernetes admission webhook")
    p.set_defaults(func=lambda ctx: _missing_verb(p))
    verbs = p.add_subparsers(dest="admission_command", metavar="COMMAND", parser_class=type(p))
    s = verbs.add_parser("serve", help="serve AdmissionReview v1 at https://ADDRESS:PORT/validate")
    s.add_argument("--policy", metavar="NAME|FILE",
                   help="built-in profile or policy file (default: [policy] default in the configuration)")
    s.add_argument("--tls-cert", required=True, metavar="FILE", help="serving certificate chain (PEM)")
    s.add_argument("--tls-key", required=True, metavar="FILE", help="its private key (PEM)")
    s.add_argument("--port", type=_port, default=8443, help="TCP port (default 8443; 0 picks a free one)")
    s.add_argument("--address", default=ALL_INTERFACES, help="address to listen on (default: all IPv4)")
    s.add_argument("--trusted-root", metavar="FILE",
                   help="Sigstore trusted_root.json for keyless signatures and transparency logs "
                        "(default: the public-good root sigstore-python embeds); /readyz checks it stays readable")
    s.add_argument("--deadline", type=_seconds, default=8.0, metavar="SECONDS",
                   help="answer every review within this time; images not verified by then are denied "
                        "(default 8, inside the API server's default 10 s timeout)")
    s.add_argument("--workers", type=_positive, default=8, help="concurrent image verifications (default 8)")
    s.add_argument("--max-connections", type=_positive, default=256, help="open connections at most (default 256)")
    s.add_argument("--no-cache", action="store_true", help="verify every image at the registry every time")
    s.add_argument("--log-decisions", choices=("all", "denied", "none"), default="all",
                   help="which decisions to log as JSON lines on stderr (default: all)")
    s.add_argument("--shutdown-grace", type=_seconds, default=5.0, metavar="SECONDS",
                   help="after SIGTERM, keep serving (unready) this long so endpoints drain (default 5)")
    s.set_defaults(func=cmd_serve)


def _missing_verb(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0-65535)")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0-3600)")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, message, and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                               + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                               "msg": record.getMessage()}
        doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def _logger(debug: bool) -> logging.Logger:
    log = logging.getLogger("stockade.admission")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False
    return log


def cmd_serve(ctx: Context) -> int:
    import ssl

    from policies import resolve_policy
    from stockade.admission import build_service
    from stockade.admission.server import AdmissionHTTPServer, CertificateStore

    args = ctx.args
    log = _logger(ctx.debug)
    policy = resolve_policy(args.policy or ctx.config.policy.default)
    try:
        certificates = CertificateStore(Path(args.tls_cert), Path(args.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load --tls-cert {args.tls_cert} / --tls-key {args.tls_key}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    trusted_root = Path(args.trusted_root) if args.trusted_root else None
    try:
        service = build_service(policy, ctx.config, ctx.paths, trusted_root=trusted_root, deadline=args.deadline,
                                workers=args.workers, use_cache=not args.no_cache, log_decisions=args.log_decisions)
    except StockadeError as exc:
        raise UsageError(f"cannot serve policy {policy.label}: {exc}") from None
    try:
        server = AdmissionHTTPServer((args.address, args.port), service, certificates,
                                     max_connections=args.max_connections)
    except OSError as exc:
        service.close()
        raise StockadeError(f"cannot listen on {args.address}:{args.port}: {exc.strerror}") from None
    return _run(server, service, log, args.shutdown_grace)


def _run(server: Any, service: Any, log: logging.Logger, grace: float) -> int:
    """Serve until SIGTERM or SIGINT, then go unready, wait ``grace`` seconds, and stop."""
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=server.serve_forever, name="stockade-admission-accept", daemon=True)
    thread.start()
    policy = service.admitter.policy
    log.info("listening", extra={"fields": {"address": server.server_address[0], "port": server.port,
                                            "policy": policy.label, "profile": policy.profile}})
    try:
        while not stop.wait(1.0):
            if not thread.is_alive():
                log.error("the accept loop stopped")
                return EXIT_FAILED
        service.draining = True
        log.info("stopping", extra={"fields": {"signal": signal.Signals(received[0]).name, "grace": grace}})
        stop.clear()
        stop.wait(grace)  # a second signal ends the grace period early
        server.shutdown()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.server_close()
        service.close()
    log.info("stopped")
    return EXIT_INTERRUPTED if received[0] == signal.SIGINT else EXIT_OK
