"""``stockade trust …``: TUF trust for tags, what Docker Content Trust did, on TUF 1.0.

Repository side: ``init``, ``sign``, ``revoke``, ``resign``, ``key rotate`` and ``inspect --repo``
write and read a repository directory (``trust/tuf/repository.py``). Client side: ``inspect --tuf``
and ``verify`` refresh through python-tuf's ngclient from a pinned root (``trust/tuf/client.py``).

Every trust module is imported inside its handler: ``stockade --help`` and every other verb stay
free of tuf, securesystemslib and cryptography.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import UsageError
from stockade.commands.keys import password_source
from stockade.context import Context
from stockade.output import add_output_flag, human_size, print_json, print_mapping, print_table

if TYPE_CHECKING:
    from engine.reference import Reference

PASSWORD_PROMPT = "Password for the TUF repository keys"
ROLE_CHOICES = ("root", "targets", "targets/releases", "snapshot", "timestamp")
_DURATION = re.compile(r"([1-9][0-9]*)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    trust = sub.add_parser("trust", help="TUF trust for tags: sign tags in a TUF repository, inspect it",
                           description="Record which manifest each tag must point at in a TUF "
                                       "repository (plain files any web server serves), and check "
                                       "tags against it.")
    trust.set_defaults(func=lambda ctx: _help(trust))
    verbs = trust.add_subparsers(dest="trust_command", metavar="COMMAND")

    p = verbs.add_parser("init", help="create a TUF repository with root, targets, "
                                      "targets/releases, snapshot and timestamp keys")
    _repo_flag(p)
    add_output_flag(p)
    p.set_defaults(func=cmd_init)

    p = verbs.add_parser("sign", help="record the tag's current manifest digest as a signed target")
    p.add_argument("image", metavar="IMAGE:TAG")
    _repo_flag(p)
    add_output_flag(p)
    p.set_defaults(func=cmd_sign)

    p = verbs.add_parser("revoke", help="remove a tag's target, so clients refuse the tag")
    p.add_argument("image", metavar="IMAGE:TAG")
    _repo_flag(p)
    add_output_flag(p)
    p.set_defaults(func=cmd_revoke)

    p = verbs.add_parser("inspect", help="show roles, versions, expiry and signed tags")
    p.add_argument("image", metavar="IMAGE[:TAG]", nargs="?",
                   help="only this image's tags (or only this tag)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--repo", metavar="DIR", help="a local repository directory")
    source.add_argument("--tuf", metavar="URL", help="a served repository's metadata URL "
                                                     "(verified from --tuf-root)")
    p.add_argument("--tuf-root", metavar="FILE", help="the pinned root.json for --tuf")
    add_output_flag(p)
    p.set_defaults(func=cmd_inspect)

    p = verbs.add_parser("resign", help="re-sign roles with fresh expiry dates (timestamp and "
                                        "snapshot by default; run it from cron)")
    _repo_flag(p)
    p.add_argument("--role", action="append", choices=ROLE_CHOICES, dest="roles",
                   help="a role to re-sign (repeatable; default: timestamp and snapshot)")
    p.add_argument("--expires", metavar="WHEN",
                   help="expiry as a duration from now (30m, 12h, 7d, 2w) or an ISO 8601 date "
                        "(default: each role's standard lifetime)")
    add_output_flag(p)
    p.set_defaults(func=cmd_resign)

    key = verbs.add_parser("key", help="manage the repository's keys")
    key.set_defaults(func=lambda ctx: _help(key))
    key_verbs = key.add_subparsers(dest="key_command", metavar="COMMAND")
    p = key_verbs.add_parser("rotate", help="replace a role's key; root signs the change, so "
                                            "clients that trust the old root keep updating")
    p.add_argument("role", metavar="ROLE", choices=ROLE_CHOICES)
    _repo_flag(p)
    add_output_flag(p)
    p.set_defaults(func=cmd_key_rotate)

    p = verbs.add_parser("verify", help="check that a tag points at the manifest its TUF target "
                                        "records (exit 1 if not)")
    p.add_argument("image", metavar="IMAGE:TAG")
    add_tuf_flags(p, required=True)
    add_output_flag(p)
    p.set_defaults(func=cmd_verify)


def add_tuf_flags(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--tuf URL --tuf-root FILE``, for ``trust verify`` and for ``stockade verify``."""
    parser.add_argument("--tuf", metavar="URL", required=required,
                        help="TUF repository metadata URL whose targets record each tag's manifest")
    parser.add_argument("--tuf-root", metavar="FILE", required=required,
                        help="pinned TUF root.json (distributed out of band) that --tuf is "
                             "verified from")


def _repo_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", metavar="DIR", required=True,
                        help="the repository directory (serve its metadata/ subdirectory)")


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# --- handlers ------------------------------------------------------------------------------------

def cmd_init(ctx: Context) -> int:
    from trust.tuf import repository

    change = repository.init(ctx.args.repo, password_source(PASSWORD_PROMPT, confirm=True))
    root = change.repo / "metadata" / "1.root.json"
    data = {**change.as_dict(), "root": str(root), "root_sha256": repository.root_sha256(root)}
    if ctx.output == "json":
        print_json(data)
        return 0
    print(f"Created TUF repository {change.repo}")
    print(f"  serve:   {change.repo / 'metadata'}   (never serve {change.repo / 'keys'})")
    print(f"  pin:     {root}")
    print(f"  sha256:  {data['root_sha256']}   (compare it when you distribute the root)")
    return 0


def cmd_sign(ctx: Context) -> int:
    from trust.tuf import repository
    from trust.tuf.client import target_name

    ref = _tag_reference(ctx.args.image)
    digest, length, media_type = resolve_tag(ctx, ref)
    name = target_name(ref)
    change = repository.sign(ctx.args.repo, name, digest, length, password_source(PASSWORD_PROMPT),
                             custom={"mediaType": media_type} if media_type else None)
    if ctx.output == "json":
        print_json({"target": name, "digest": digest, "length": length, **change.as_dict()})
    else:
        print(f"Signed {name} -> {digest} ({length} bytes) in targets/releases "
              f"(snapshot v{change.versions['snapshot']}, timestamp v{change.versions['timestamp']})")
    return 0


def cmd_revoke(ctx: Context) -> int:
    from trust.tuf import repository
    from trust.tuf.client import target_name

    name = target_name(_tag_reference(ctx.args.image))
    change = repository.revoke(ctx.args.repo, name, password_source(PASSWORD_PROMPT))
    if ctx.output == "json":
        print_json({"target": name, "revoked": True, **change.as_dict()})
    else:
        print(f"Revoked {name} (timestamp v{change.versions['timestamp']})")
    return 0


def cmd_resign(ctx: Context) -> int:
    from trust.tuf import repository

    now = repository.utcnow()
    expires = parse_expiry(ctx.args.expires, now) if ctx.args.expires else None
    roles = ctx.args.roles or ["timestamp", "snapshot"]
    change = repository.resign(ctx.args.repo, roles, password_source(PASSWORD_PROMPT), now=now,
                               expires=expires)
    if ctx.output == "json":
        print_json(change.as_dict())
    else:
        print("Re-signed " + ", ".join(f"{r} v{change.versions[r]}" for r in change.changed))
    return 0


def cmd_key_rotate(ctx: Context) -> int:
    from trust.tuf import repository

    change = repository.rotate(ctx.args.repo, ctx.args.role, password_source(PASSWORD_PROMPT))
    if ctx.output == "json":
        print_json({"role": ctx.args.role, **change.as_dict()})
    else:
        print(f"Rotated the {ctx.args.role} key: root v{change.versions['root']}, "
              f"targets v{change.versions['targets']}, timestamp v{change.versions['timestamp']}; "
              "clients pinned to an older root follow the new one")
    return 0


def cmd_inspect(ctx: Context) -> int:
    prefix, tag_name = _inspect_filter(ctx.args.image)
    if ctx.args.repo:
        from trust.tuf import repository

        if ctx.args.tuf_root:
            raise UsageError("--tuf-root goes with --tuf, not --repo")
        data = repository.describe(ctx.args.repo)
    else:
        from trust.tuf import client

        if not ctx.args.tuf_root:
            raise UsageError("--tuf needs --tuf-root FILE: the pinned root the repository is "
                             "verified from")
        data = client.describe_remote(ctx.args.tuf, ctx.args.tuf_root, tuf_cache(ctx))
    if prefix is not None:
        data["targets"] = [t for t in data["targets"] if t["name"] == tag_name
                           or (tag_name is None and t["name"].startswith(prefix))]
        if tag_name is not None and not data["targets"]:
            from trust.tuf.errors import TufUnknownTagError

            raise TufUnknownTagError(f"{tag_name} is not signed in "
                                     f"{ctx.args.repo or ctx.args.tuf}")
    if ctx.output == "json":
        print_json(data)
        return 0
    print_mapping({k: v for k, v in data.items() if k not in ("roles", "targets")})
    print()
    print_table(data["roles"], [("role", "role"), ("version", "version"), ("expires", "expires"),
                                ("keys", lambda r: " ".join(k[:12] for k in r.get("keyids", ()))),
                                ("signatures", lambda r: r.get("signatures", "verified"))])
    print()
    print_table(data["targets"], [("tag", "name"), ("digest", "digest"),
                                  ("size", lambda t: human_size(t["length"])), ("role", "role")])
    return 0


def cmd_verify(ctx: Context) -> int:
    """With ``-o json`` a failure is reported on stdout too, as ``{"verified": false, "reason": …}``
    (the error line still goes to stderr and the exit code is 1)."""
    from trust.tuf import client
    from trust.tuf.errors import TufError

    ref = _tag_reference(ctx.args.image)
    digest, length, _ = resolve_tag(ctx, ref)
    try:
        result = client.verify_tag(ref, digest, length, ctx.args.tuf, ctx.args.tuf_root,
                                   tuf_cache(ctx))
    except TufError as exc:
        if ctx.output == "json":
            print_json({"verified": False, "image": str(ref), "digest": digest,
                        "reason": exc.reason, "error": str(exc)})
        raise
    if ctx.output == "json":
        print_json({"verified": True, **result.as_dict()})
    else:
        v = result.versions
        print(f"Verified {result.target} -> {result.digest} through TUF {result.url} "
              f"(root v{v['root']}, timestamp v{v['timestamp']}; valid until "
              f"{result.expires.isoformat()})")
    return 0


# --- shared pieces (``stockade verify`` uses add_tuf_flags and tag_authority) ------------------

def tag_authority(ctx: Context) -> Any:
    """A ``TufTagAuthority`` from ``--tuf``/``--tuf-root`` (None without them), for ``verify``."""
    url, root = getattr(ctx.args, "tuf", None), getattr(ctx.args, "tuf_root", None)
    if not url and not root:
        return None
    if not (url and root):
        raise UsageError("--tuf URL and --tuf-root FILE go together: the repository and the "
                         "pinned root it is verified from")
    from trust.tuf.client import TufTagAuthority

    return TufTagAuthority(url, Path(root), tuf_cache(ctx))


def tuf_cache(ctx: Context) -> Path:
    """Where verified TUF metadata is kept between runs (rollback protection needs it)."""
    return ctx.paths.cache / "tuf"


def resolve_tag(ctx: Context, ref: "Reference") -> tuple[str, int, str | None]:
    """The manifest the registry serves for ``ref``'s tag now: (digest, length, media type).

    This is the top-level manifest (an index for a multi-platform image), as Docker Content Trust
    recorded it: the digest a ``pull IMAGE@digest`` would name.
    """
    from engine.registry import RegistryClient

    client = RegistryClient(ctx.config, ctx.paths)
    try:
        manifest = client.get_manifest(ref)
    finally:
        client.close()
    return manifest.digest, len(manifest.raw), manifest.media_type


def parse_expiry(text: str, now: datetime) -> datetime:
    """``7d``/``12h``/``30m``/``2w`` from ``now``, or an ISO 8601 date; it must lie in the future."""
    m = _DURATION.fullmatch(text.strip())
    if m:
        when = now + timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--expires {text!r}: expected a duration (30m, 12h, 7d, 2w) or an "
                             "ISO 8601 date such as 2026-01-31T00:00:00Z") from None
        when = (when.replace(tzinfo=timezone.utc) if when.tzinfo is None
                else when.astimezone(timezone.utc))
    when = when.replace(microsecond=0)
    if when <= now:
        raise UsageError(f"--expires {text!r} is not in the future")
    return when


def _tag_reference(text: str) -> "Reference":
    from engine.reference import Reference

    ref = Reference.parse(text)
    if ref.digest:
        raise UsageError(f"{text}: TUF trust is recorded per tag; give IMAGE:TAG without @digest")
    return ref


def _inspect_filter(text: str | None) -> tuple[str | None, str | None]:
    """(target-name prefix for the image, exact target name if a tag was given)."""
    if not text:
        return None, None
    ref = _tag_reference(text)
    prefix = f"{ref.registry}/{ref.repository}:"
    explicit_tag = text.rfind(":") > text.rfind("/")
    return prefix, (prefix + ref.tag if explicit_tag and ref.tag else None)
