"""``stockade audit``: grade the host, the engine, images and containers against CIS-style checks.

Exit codes (README "Host audit"): 0 when no unsuppressed failure is at or above ``--fail-on``
(default ``low``), 1 when one is, 2 for a usage or configuration error (bad flag, unknown check ID,
malformed ignore file, unreadable ``--image`` layout). Findings are always reported in full;
``--fail-on`` only decides the exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ConfigError, StockadeError, UsageError
from stockade import __version__
from stockade.context import Context

if TYPE_CHECKING:
    from engine.config import Config, Paths
    from hardening.audit.model import Check
    from hardening.audit.view import AuditView
    from stockade.verification import PolicySignatures

SCOPES = ("host", "engine", "images", "containers", "all")
FORMATS = ("table", "json", "sarif", "junit", "html")
SEVERITIES = ("critical", "high", "medium", "low", "info", "none")


def _ids(values: list[str] | None) -> list[str]:
    """``--check A,B --check C`` -> [A, B, C]."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "audit", help="grade the host, engine, images and containers (CIS-style checks)",
        description="Run CIS-style checks. Exit 0: no finding at or above --fail-on; 1: findings; "
                    "2: usage or configuration error.")
    p.add_argument("scope", nargs="?", choices=SCOPES, default=None,
                   help="what to audit (default: all, or images with --image); engine includes "
                        "file permissions, all adds operations")
    p.add_argument("--image", metavar="REF",
                   help="audit this image only: a store reference, or oci:DIR[:TAG] for an OCI layout")
    p.add_argument("-o", "--output", choices=FORMATS, default="table",
                   help="output format (default: table)")
    p.add_argument("--profile", choices=("level1", "level2"), default="level2",
                   help="level1: the practical baseline; level2 (default): every check")
    p.add_argument("--check", action="append", metavar="ID",
                   help="run only checks with these IDs or prefixes (comma-separated, repeatable)")
    p.add_argument("--skip", action="append", metavar="ID",
                   help="do not run checks with these IDs or prefixes (comma-separated, repeatable)")
    p.add_argument("--ignore-file", metavar="FILE",
                   help="TOML file of accepted findings, each with a reason and an expiry")
    p.add_argument("--fail-on", choices=SEVERITIES, default="low", metavar="SEVERITY",
                   help="exit 1 when a finding is at or above this severity: critical, high, "
                        "medium, low (default), info, or none")
    p.add_argument("--policy", metavar="NAME|FILE",
                   help="the policy whose signature requirements IMG-009 checks images against "
                        "(default: [policy] default)")
    p.add_argument("--host-root", metavar="DIR", default="/",
                   help="audit a host filesystem mounted at DIR instead of the running host")
    p.add_argument("--list", action="store_true", help="list the checks that would run, then exit")
    p.set_defaults(func=cmd_audit)


def cmd_audit(ctx: Context) -> int:
    from engine.config import Paths
    from hardening.audit.ignore import load_ignore_file
    from hardening.audit.model import Severity
    from hardening.audit.registry import load_registry
    from hardening.audit.runner import SCOPES as DOMAINS_OF, run_audit

    args = ctx.args
    scope = args.scope or ("images" if args.image else "all")
    registry = load_registry()
    try:
        checks = registry.select(DOMAINS_OF[scope], args.profile, _ids(args.check), _ids(args.skip))
    except ValueError as exc:
        raise UsageError(f"--check/--skip: {exc}") from None
    if args.list:
        return _list(ctx, checks)
    ignores = (load_ignore_file(args.ignore_file, [c.id for c in registry.checks])
               if args.ignore_file else [])
    config, error = None, None
    try:
        config = ctx.config
        paths = ctx.paths
    except ConfigError as exc:
        error = str(exc)
        paths = Paths.default(root=getattr(args, "root", None), runroot=getattr(args, "runroot", None))
    verifier = _signatures(args, config, paths)
    try:
        view = _view(args, paths, config, error, verifier)
        report = run_audit(view, checks, scope=scope, profile=args.profile,
                           fail_on=None if args.fail_on == "none" else Severity.parse(args.fail_on),
                           ignores=ignores, benchmark=registry.benchmark, tool_version=__version__)
    finally:
        if verifier is not None:
            verifier.verifier.close()
    from hardening.audit.report import render

    sys.stdout.write(render(report, args.output))
    for entry in report.expired_ignores:
        sys.stderr.write(f"stockade: warning: {entry.where}: ignore entry for {entry.check} expired "
                         f"on {entry.expires.isoformat()}; the finding counts again\n")
    return report.exit_code()


def _signatures(args: argparse.Namespace, config: Config | None, paths: Paths) -> PolicySignatures | None:
    """IMG-009's verifier: the policy's signature rules, verified through trust (None when the
    policy requires no signature at all, so the check SKIPs with that reason)."""
    if config is None:
        return None
    from policies import PolicyError, resolve_policy
    from stockade.verification import PolicySignatures, PolicyVerifier

    try:
        policy = resolve_policy(args.policy or config.policy.default)
    except PolicyError as exc:
        raise UsageError(f"--policy: {exc}") from None
    if not policy.requirements:
        return None
    return PolicySignatures(policy, PolicyVerifier(config, paths))


def _view(args: argparse.Namespace, paths: Paths, config: Config | None,
          error: str | None, signatures: PolicySignatures | None) -> AuditView:
    """The machine view, with ``--image`` narrowing the images to one."""
    from hardening.audit.view import for_machine

    images = None
    if args.image:
        if args.image.startswith("oci:"):
            from engine.layers import UnpackLimits
            from hardening.audit.oci_layout import open_layout
            from hardening.audit.targets import StaticImages

            # The same bounds the store applies to layers ([unpack] in the configuration).
            limits = UnpackLimits.from_config(config.unpack) if config is not None else None
            try:
                images = StaticImages([open_layout(args.image[4:], limits)])
            except StockadeError as exc:
                raise UsageError(f"--image {args.image}: {exc}") from None
        else:
            from hardening.audit.sources import StoreImages
            from hardening.audit.targets import SourceUnavailable, StaticImages

            # Resolve now: an image the user named but the store lacks is a usage error (exit 2),
            # while a store that cannot be read at all leaves the image checks to SKIP.
            try:
                images = StaticImages(StoreImages(paths, config, only=args.image).images())
            except SourceUnavailable:
                images = StoreImages(paths, config, only=args.image)
            except StockadeError as exc:
                raise UsageError(f"--image {args.image}: {exc}") from None
    import stockade

    package = str(Path(stockade.__file__).resolve().parent) if stockade.__file__ else ""
    return for_machine(paths, config, error, host_root=args.host_root, images=images,
                       packages=(package,) if package else (), signatures=signatures)


def _list(ctx: Context, checks: list[Check]) -> int:
    from hardening.audit.report.common import check_dict
    from stockade.output import print_json, print_table

    rows = [check_dict(c) for c in checks]
    if ctx.output == "json":
        print_json(rows)
    else:
        print_table(rows, [("id", "id"), ("severity", "severity"), ("level", "level"),
                           ("domain", "domain"), ("title", "title")])
    return 0
