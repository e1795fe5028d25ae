"""``stockade policy check|test|lint|new|show``: the policy engine for CI pipelines.

``check`` evaluates Kubernetes manifests and ``stockade run`` lines against a policy and gates the
pipeline by its exit code; ``explain`` shows what ``run`` would do with a request (``stockade.explain``); ``test`` runs policy test cases; ``lint`` validates a policy and warns
about risky settings; ``new`` scaffolds a policy requiring given signers; ``show`` prints a built-in
or resolved policy.

Exit codes (README "Policies"): 0 allowed / all passed / valid; 1 denied (a violation at
``enforce``) / a test case failed / lint warnings with ``--strict``; 2 a usage error, an invalid
policy, manifest or test file.

Heavy imports stay in the handlers: CEL only loads when a policy has rules.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from typing import Any

from stockade import __version__
from stockade.commands.containers import add_run_flags
from stockade.context import Context
from stockade.output import print_json, print_table

EXIT_OK, EXIT_DENIED, EXIT_USAGE = 0, 1, 2
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_MANIFEST_BYTES = 32 * 1024 * 1024


class PolicyUsageError(Exception):
    user_facing = True
    exit_code = EXIT_USAGE


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class _SignerAction(argparse.Action):
    """Keeps ``--images``/``--key``/``--identity``/``--issuer`` in command-line order: each
    ``--images`` opens a group that the following keys and identities belong to."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        events = list(getattr(namespace, self.dest) or [])
        events.append((option_string, values))
        setattr(namespace, self.dest, events)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("policy", help="check manifests and run lines against a policy; test, lint, "
                                      "scaffold and show policies")
    p.set_defaults(func=lambda ctx: _missing_verb(p))
    verbs = p.add_subparsers(dest="policy_command", metavar="COMMAND", parser_class=type(p))

    c = verbs.add_parser("check", help="evaluate Kubernetes manifests and `stockade run` lines (CI gate)")
    c.add_argument("-f", "--file", dest="files", action="extend", nargs="+", default=[], metavar="FILE",
                   help="Kubernetes manifests (.yaml/.yml/.json, multi-document; a directory: the manifests "
                        "below it) or scripts with run lines")
    c.add_argument("--run", dest="runs", action="append", default=[], metavar="LINE",
                   help="a `stockade run …` command line to check (Docker's flag names)")
    c.add_argument("--policy", metavar="NAME|FILE", help="built-in profile or policy file "
                                                          "(default: [policy] default in the configuration)")
    c.add_argument("-o", "--output", choices=("table", "json", "sarif"), default="table")
    c.add_argument("--now", type=_date, metavar="YYYY-MM-DD", help="judge exception expiry on this date")
    c.set_defaults(func=cmd_check)

    t = verbs.add_parser("test", help="run policy test cases (stockade-test.yaml files) under DIR")
    t.add_argument("directory", metavar="DIR")
    t.add_argument("-o", "--output", choices=("table", "json"), default="table")
    t.set_defaults(func=cmd_test)

    lt = verbs.add_parser("lint", help="validate a policy file and warn about risky settings")
    lt.add_argument("file", metavar="FILE")
    lt.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")
    lt.add_argument("-o", "--output", choices=("table", "json"), default="table")
    lt.set_defaults(func=cmd_lint)

    n = verbs.add_parser("new", help="print a new policy requiring the given signers")
    n.add_argument("--name", default="policy", help="metadata.name (default: policy)")
    n.add_argument("--profile", default="restricted", help="built-in profile underneath (default: restricted)")
    for flag, what in (("--images", "an image glob; the keys and identities after it apply to it"),
                       ("--key", "a public key file (PEM) that may sign those images"),
                       ("--identity", "a keyless signer's certificate identity (exact)"),
                       ("--identity-regexp", "a keyless signer's identity as a regular expression"),
                       ("--issuer", "the OIDC issuer of the preceding identity (exact)"),
                       ("--issuer-regexp", "the OIDC issuer as a regular expression")):
        n.add_argument(flag, dest="signers", action=_SignerAction, metavar="VALUE", help=what)
    n.add_argument("--embed-keys", action="store_true", help="inline the keys' PEM instead of their paths")
    n.add_argument("--require-tlog", action="store_true", help="require transparency-log entries for keys too")
    n.set_defaults(func=cmd_new)

    e = verbs.add_parser("explain", add_help=False,
                         help="show the hardened configuration and the decision `stockade run IMAGE [flags]` "
                              "would get, without running anything")
    add_run_flags(e)
    e.add_argument("-o", "--output", choices=("table", "json"), default="table")
    e.set_defaults(func=cmd_explain)

    s = verbs.add_parser("show", help="print a built-in profile or a policy file with its profile applied")
    s.add_argument("policy", metavar="NAME|FILE")
    s.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    s.set_defaults(func=cmd_show)


def _missing_verb(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


# ----------------------------------------------------------------------------------------- check

def _run_lines(text: str) -> list[tuple[int, str]]:
    """``(first line number, joined line)`` for each stockade/docker/podman run line in a script."""
    out, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        words = line.removeprefix("$ ").removeprefix("sudo ").split()
        if len(words) >= 2 and os.path.basename(words[0]) in ("stockade", "docker", "podman") and "run" in words[1:]:
            out.append((start, line))
    return out


def _expand(paths: list[str]) -> list[str]:
    """Files as given; a directory stands for the manifests (.yaml/.yml/.json) below it, sorted."""
    out = []
    for path in paths:
        if not os.path.isdir(path):
            out.append(path)
            continue
        found = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                       if name.endswith(MANIFEST_SUFFIXES))
        if not found:
            raise PolicyUsageError(f"{path}: no manifest (.yaml/.yml/.json) in this directory")
        out += found
    return out


def _subjects(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    from policies.kubernetes import documents_from_manifests
    from policies.runline import document_from_run_args, split_run_line
    from policies.sources import Located, Source
    from policies.yamlsource import read_text
    from stockade.gatecache import file_sha256

    located: list[Located] = []
    skipped: list[str] = []

    def run_doc(line: str, file: str, number: int | None) -> None:
        try:
            doc = document_from_run_args(split_run_line(line), cwd=os.getcwd(), hash_file=file_sha256)
        except ValueError as exc:
            where = f"{file}:{number}" if number else file
            raise PolicyUsageError(f"{where}: cannot read the run line: {exc}") from None
        image = doc["image"]["reference"]
        located.append(Located(doc, Source(file, number, f"run {image} at {file}:{number or 0}",
                                           f"run {image}", lambda path, n=number: (n, None))))

    for file in _expand(args.files):
        text = read_text(file, limit=MAX_MANIFEST_BYTES, what="manifest")
        if file.endswith(MANIFEST_SUFFIXES):
            docs, skip = documents_from_manifests(text, file)
            located += docs
            skipped += [f"{file}: {s}" for s in skip]
        else:
            lines = _run_lines(text)
            if not lines:
                raise PolicyUsageError(f"{file}: no `stockade run` line found (manifests must end in "
                                       f"{', '.join(MANIFEST_SUFFIXES)})")
            for number, line in lines:
                run_doc(line, file, number)
    for line in args.runs:
        run_doc(line if line.split()[:1] and line.split()[0].endswith(("stockade", "docker", "podman"))
                else f"stockade run {line}", "--run", None)
    return located, skipped


def cmd_check(ctx: Context) -> int:
    from policies import evaluate, harden, requirements_for, resolve_policy
    from policies.errors import PolicyError
    from stockade.verification import PolicyVerifier

    args = ctx.args
    if not args.files and not args.runs:
        raise PolicyUsageError("nothing to check: give -f FILE… and/or --run 'stockade run …'")
    policy = resolve_policy(args.policy or ctx.config.policy.default)
    located, skipped = _subjects(args)
    if not located:
        raise PolicyUsageError("no container found to check (" + "; ".join(skipped or ["no input"]) + ")")
    checked = []
    verifier = PolicyVerifier(ctx.config, ctx.paths)
    try:
        for item in located:
            document = item.document
            request = None
            if document.get("context", {}).get("kind") == "run":
                request = document["container"]
                hardened = harden(policy, document)
                document = hardened.document
            reference = document["image"]["reference"]
            try:
                requirements = requirements_for(policy, reference)
                if requirements:  # verified where the manifest points: the registry's current digest
                    facts = verifier.verify(reference, requirements)
                    document = {**document, "image": {**document["image"], **facts.as_image()}}
                decision = evaluate(policy, document, now=args.now)
            except PolicyError as exc:
                where = f"{item.source.file}:{item.source.line}" if item.source.line else item.source.file
                raise PolicyUsageError(f"{where}: {item.source.label}: {exc}") from None
            checked.append((item.source, decision, request, document["container"]))
    finally:
        verifier.close()
    denied = sum(1 for _, d, _, _ in checked if not d.allowed)
    if args.output == "sarif":
        from policies.sarif import to_sarif

        print_json(to_sarif(((s, d) for s, d, _, _ in checked), __version__))
    elif args.output == "json":
        print_json({"policy": policy.label, "profile": policy.profile, "allowed": denied == 0,
                    "checked": len(checked), "denied": denied, "skipped": skipped,
                    "results": [{"source": {"file": s.file, "line": s.line, "object": s.identity},
                                 **d.as_dict(), **({"request": req, "effective": eff} if req is not None else {})}
                                for s, d, req, eff in checked]})
    else:
        _check_table(checked, policy.label, denied)
    return EXIT_DENIED if denied else EXIT_OK


def _check_table(checked: list[Any], label: str, denied: int) -> None:
    rows = []
    for source, decision, _, _ in checked:
        where = f"{source.file}:{source.line}" if source.line else source.file
        if not decision.results:
            rows.append({"where": where, "object": source.label, "result": "allow", "rule": "", "message": ""})
        for kind, items in (("deny", decision.violations), ("warn", decision.warnings),
                            ("audit", decision.audits), ("exempt", decision.exempted)):
            for r in items:
                line, _ = source.locate(r.finding.path)
                rows.append({"where": f"{source.file}:{line}" if line else where, "object": source.label,
                             "result": kind, "rule": r.finding.rule,
                             "message": r.finding.message + (f" (fix: {r.finding.fix})" if r.finding.fix else "")})
        for e in decision.expired_exceptions:
            rows.append({"where": where, "object": source.label, "result": "expired",
                         "rule": ",".join(e.rules), "message": f"exception {e.id} expired {e.expires}: inert"})
    print_table(rows, [("where", "where"), ("object", "object"), ("result", "result"), ("rule", "rule"),
                       ("message", "message")])
    print(f"policy {label}: {len(checked)} container(s) checked, {denied} denied")


def cmd_explain(ctx: Context) -> int:
    from stockade.explain import explain

    return explain(ctx)


# ------------------------------------------------------------------------------ test, lint, show

def cmd_test(ctx: Context) -> int:
    from policies.testing import find_test_files, run_test_file

    directory = ctx.args.directory
    if not os.path.isdir(directory):
        raise PolicyUsageError(f"{directory}: not a directory")
    files = find_test_files(directory)
    if not files:
        raise PolicyUsageError(f"{directory}: no stockade-test.yaml found")
    results = [r for f in files for r in run_test_file(f)]
    failed = sum(1 for r in results if not r.passed)
    if ctx.output == "json":
        print_json({"passed": len(results) - failed, "failed": failed, "cases": [r.as_dict() for r in results]})
    else:
        print_table([{"file": r.file, "case": r.name, "result": "pass" if r.passed else "FAIL",
                      "problems": "; ".join(r.problems)} for r in results],
                    [("file", "file"), ("case", "case"), ("result", "result"), ("problems", "problems")])
        print(f"{len(results) - failed} passed, {failed} failed")
    return EXIT_DENIED if failed else EXIT_OK


def cmd_lint(ctx: Context) -> int:
    from policies import load_policy
    from policies.lint import lint
    from policies.yamlsource import read_text

    file = ctx.args.file
    policy = load_policy(file)
    warnings = lint(policy, read_text(file, limit=4 * 1024 * 1024, what="policy"), file)
    if ctx.output == "json":
        print_json({"file": file, "valid": True, "policy": policy.label, "profile": policy.profile,
                    "rules": len(policy.rules), "signatures": len(policy.requirements), "warnings": warnings})
    else:
        print(f"{file}: valid (policy {policy.label}, profile {policy.profile or 'none'}, "
              f"{len(policy.requirements)} signature requirement(s), {len(policy.rules)} rule(s))")
        for w in warnings:
            print(f"warning: {w}")
    return EXIT_DENIED if warnings and ctx.args.strict else EXIT_OK


def cmd_show(ctx: Context) -> int:
    from policies import resolve_policy

    data = resolve_policy(ctx.args.policy).to_plain()
    if ctx.args.output == "json":
        print_json(data)
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, width=100))
    return EXIT_OK


# ------------------------------------------------------------------------------------------- new

def _groups(events: list[tuple[str, str]]) -> list[Any]:
    from policies.scaffold import SignerGroup

    groups: list[SignerGroup] = []
    for flag, value in events:
        if flag == "--images":
            groups.append(SignerGroup([value]))
            continue
        if not groups:
            raise PolicyUsageError(f"{flag} {value}: give --images GLOB first (the signer applies to those images)")
        group = groups[-1]
        if flag == "--key":
            group.keys.append(value)
        elif flag in ("--identity", "--identity-regexp"):
            group.identities.append({"subject" if flag == "--identity" else "subjectRegExp": value})
        elif not group.identities or any(k.startswith("issuer") for k in group.identities[-1]):
            raise PolicyUsageError(f"{flag} {value}: give --identity or --identity-regexp before its issuer")
        else:
            group.identities[-1]["issuer" if flag == "--issuer" else "issuerRegExp"] = value
    for group in groups:
        if not group.keys and not group.identities:
            raise PolicyUsageError(f"--images {group.images[0]}: give --key PUB or --identity ID --issuer URL")
        for ident in group.identities:
            if not any(k.startswith("issuer") for k in ident):
                raise PolicyUsageError(f"identity {next(iter(ident.values()))}: give --issuer URL (or --issuer-regexp)")
    return groups


def cmd_new(ctx: Context) -> int:
    from policies import load_policy_text
    from policies.scaffold import new_policy_text

    args = ctx.args
    groups = _groups(args.signers or [])
    if not groups:
        raise PolicyUsageError("give at least one --images GLOB with --key PUB or --identity ID --issuer URL")
    try:
        text = new_policy_text(args.name, args.profile, groups, embed_keys=args.embed_keys,
                               require_tlog=args.require_tlog)
    except OSError as exc:
        raise PolicyUsageError(f"cannot read key {exc.filename}: {exc.strerror}") from None
    load_policy_text(text, "<policy new>", base_dir=os.getcwd())  # what we print must load
    sys.stdout.write(text)
    return EXIT_OK
