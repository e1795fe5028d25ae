"""``sign``, ``attest``, ``verify``, ``verify-attestation``, ``sign-blob``, ``verify-blob``.

Flags follow cosign's where cosign has them (``--key``, ``--certificate-identity[-regexp]``,
``--certificate-oidc-issuer[-regexp]``, ``--trusted-root``, ``--offline``, ``-a k=v``,
``--insecure-ignore-sct``, ``--bundle``, ``--type``). Exit codes: 0 verified (or signed), 1 a failed
verification or another error, 2 a usage error. ``-o json`` prints one document (README, "Signing
and verification (CI)").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError

from stockade.commands.keys import password_source
from stockade.commands.tuf import add_tuf_flags, tag_authority
from stockade.context import Context
from stockade.output import add_output_flag, print_json

if TYPE_CHECKING:
    from trust.requirements import Requirements
    from trust.verdict import SignatureResult, Verdict


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sign", help="sign an image (by digest) with a key",
                       description="Sign the manifest the image reference resolves to (never the tag). "
                                   "--format legacy writes a cosign signature layer under the "
                                   "sha256-<hex>.sig tag; --format bundle attaches a Sigstore bundle "
                                   "as an OCI 1.1 referrer (cosign v3's layout).")
    p.add_argument("image", metavar="IMAGE")
    _signing_flags(p)
    p.add_argument("-a", "--annotation", action="append", default=[], metavar="KEY=VALUE",
                   help="add KEY=VALUE to the signed payload's optional section (legacy format)")
    add_output_flag(p)
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("attest", help="attach a signed in-toto attestation to an image",
                       description="Sign an in-toto statement about the image's digest with PREDICATE "
                                   "as its predicate: a legacy sha256-<hex>.att layer, or a bundle "
                                   "referrer with --format bundle.")
    p.add_argument("image", metavar="IMAGE")
    _signing_flags(p)
    p.add_argument("--type", required=True, metavar="URI", dest="predicate_type",
                   help="the predicate type URI (e.g. https://slsa.dev/provenance/v1)")
    p.add_argument("--predicate", required=True, metavar="FILE", help="JSON file holding the predicate")
    add_output_flag(p)
    p.set_defaults(func=cmd_attest)

    p = sub.add_parser("verify", help="verify an image's signatures (exit 0 only if one satisfies all "
                                      "requirements)",
                       description="Find the image's signatures (referrers API, referrers tag schema, "
                                   "legacy .sig tag) and verify each on its stored bytes. Exit 0 when "
                                   "at least one satisfies every requirement, 1 otherwise, 2 on usage "
                                   "errors.")
    p.add_argument("image", metavar="IMAGE")
    _verify_flags(p)
    _image_flags(p)
    add_tuf_flags(p)
    add_output_flag(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("verify-attestation", help="verify an image's in-toto attestations of one type",
                       description="Verify attestations (legacy .att layers and bundle referrers) whose "
                                   "statement has predicate type URI, and print the verified statements.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--type", required=True, metavar="URI", dest="predicate_type",
                   help="the predicate type to require")
    _verify_flags(p)
    _image_flags(p)
    add_output_flag(p)
    p.set_defaults(func=cmd_verify_attestation)

    p = sub.add_parser("sign-blob", help="sign a file into a Sigstore bundle (no network)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--key", required=True, metavar="KEY", help="private key file")
    p.add_argument("--bundle", required=True, metavar="OUT", help="where to write the bundle")
    add_output_flag(p)
    p.set_defaults(func=cmd_sign_blob)

    p = sub.add_parser("verify-blob", help="verify a file against a Sigstore bundle",
                       description="Verify FILE against bundle B: a message signature over FILE, or a "
                                   "DSSE bundle whose in-toto statement has FILE as subject.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--bundle", required=True, metavar="B", help="the Sigstore bundle")
    _verify_flags(p)
    add_output_flag(p)
    p.set_defaults(func=cmd_verify_blob)


def _signing_flags(p: argparse.ArgumentParser) -> None:
    from trust.options import SIGNATURE_FORMATS

    p.add_argument("--key", required=True, metavar="KEY",
                   help="private key (PKCS#8 PEM, or cosign's encrypted format); password from "
                        "$STOCKADE_PASSWORD or a prompt")
    p.add_argument("--format", choices=SIGNATURE_FORMATS, default="legacy", dest="sig_format",
                   help="legacy: cosign .sig/.att tag (default); bundle: Sigstore bundle referrer")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="sign that platform's manifest of an index instead of the index")


def _verify_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", action="append", default=[], metavar="PUB",
                   help="accept signatures by this public key (repeatable: any of them)")
    p.add_argument("--certificate-identity", metavar="ID", help="accept certificates for exactly this identity")
    p.add_argument("--certificate-identity-regexp", metavar="RE",
                   help="accept certificates whose identity matches RE (searched, as in cosign: "
                        "anchor it with ^…$ to match the whole identity)")
    p.add_argument("--certificate-oidc-issuer", metavar="URL", help="the OIDC issuer the certificate must name")
    p.add_argument("--certificate-oidc-issuer-regexp", metavar="RE",
                   help="a regular expression the certificate's OIDC issuer must match (searched, "
                        "as in cosign: anchor it with ^…$)")
    p.add_argument("--trusted-root", metavar="FILE",
                   help="Sigstore trusted_root.json (default: the public-good root sigstore-python embeds)")
    p.add_argument("--offline", action="store_true",
                   help="never contact the network for trust material (log proofs must be embedded, "
                        "as they always are for Stockade)")
    p.add_argument("--require-tlog", action="store_true",
                   help="require a verified transparency-log entry for every accepted signature")
    p.add_argument("--insecure-ignore-sct", action="store_true",
                   help="do not require an SCT in keyless certificates (those before 2022 have none)")


def _image_flags(p: argparse.ArgumentParser) -> None:
    from trust.options import SCOPES

    p.add_argument("--check-reference", action="store_true",
                   help="require the signed docker-reference to name this repository (off, as in cosign)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="verify this platform's manifest of an image index")
    p.add_argument("--scope", choices=SCOPES, default="resolved",
                   help="for an index: verify the index, the --platform manifest, or both "
                        "(default: the index, or the platform's manifest when --platform is given)")
    p.add_argument("--no-cache", action="store_true", help="do not use or update the verification cache")


def _requirements(ctx: Context, *, tuf: bool = False) -> Requirements:
    from trust.identity import IdentityMatcher
    from trust.keys import load_public_key
    from trust.requirements import Requirements
    from trust.trustroot import TrustedRoot

    a = ctx.args
    identity_flags = (a.certificate_identity, a.certificate_identity_regexp,
                      a.certificate_oidc_issuer, a.certificate_oidc_issuer_regexp)
    identities = ()
    if any(v is not None for v in identity_flags):
        identities = (IdentityMatcher(*identity_flags),)
    return Requirements(
        keys=tuple(load_public_key(Path(k)) for k in a.key),
        identities=identities,
        trusted_root=TrustedRoot.load(Path(a.trusted_root)) if a.trusted_root else None,
        require_tlog=a.require_tlog,
        check_reference=getattr(a, "check_reference", False),
        ignore_sct=a.insecure_ignore_sct,
        offline=a.offline,
        tuf=tag_authority(ctx) if tuf else None,
    )


def _client(ctx: Context) -> contextlib.closing[Any]:
    """A registry client for a ``with`` block: its connections close however the block ends."""
    from engine.registry import RegistryClient

    return contextlib.closing(RegistryClient(ctx.config, ctx.paths))


def _reference(text: str) -> Any:
    from engine.reference import Reference

    return Reference.parse(text)


def _annotations(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"annotation {pair!r} must be KEY=VALUE")
        out[key] = value
    return out


def _load_key(ctx: Context) -> Any:
    from trust.keys import load_private_key

    return load_private_key(Path(ctx.args.key), password_source("Password for the private key"))


def _report_signed(ctx: Context, ref: Any, signed: Any, what: str) -> int:
    if ctx.output == "json":
        print_json({"reference": str(ref), **signed.to_json()})
    else:
        print(f"{what} {ref.name}@{signed.digest} ({signed.format}) -> {signed.location}")
    return 0


def cmd_sign(ctx: Context) -> int:
    from trust.simplesigning import check_annotations
    from trust.sign import sign_image

    ref = _reference(ctx.args.image)
    annotations = _annotations(ctx.args.annotation)
    check_annotations(annotations)
    if annotations and ctx.args.sig_format == "bundle":
        raise UsageError("-a annotations go into the legacy payload; --format bundle has none")
    key = _load_key(ctx)
    with _client(ctx) as client:
        signed = sign_image(client, ref, key, fmt=ctx.args.sig_format, annotations=annotations,
                            platform=ctx.args.platform)
    return _report_signed(ctx, ref, signed, "Signed")


MAX_PREDICATE = 16 * 1024 * 1024


def cmd_attest(ctx: Context) -> int:
    from trust.sign import attest_image

    from engine.boundedio import load_json

    ref = _reference(ctx.args.image)
    # Bounded like every file we read: a predicate ends up inside one registry layer, and an SBOM or
    # provenance document is kilobytes to a few megabytes.
    _, predicate = load_json(ctx.args.predicate, MAX_PREDICATE, what=f"predicate {ctx.args.predicate}",
                             error=UsageError)
    key = _load_key(ctx)
    with _client(ctx) as client:
        signed = attest_image(client, ref, key, ctx.args.predicate_type, predicate,
                              fmt=ctx.args.sig_format, platform=ctx.args.platform)
    return _report_signed(ctx, ref, signed, "Attested")


def _verify(ctx: Context, predicate_type: str | None) -> Verdict:
    from trust.cache import VerificationCache
    from trust.verify import verify_image

    ref = _reference(ctx.args.image)
    requirements = _requirements(ctx, tuf=predicate_type is None)
    cache = None if ctx.args.no_cache else VerificationCache.for_paths(ctx.paths.cache)
    with _client(ctx) as client:
        return verify_image(client, ref, requirements, platform=ctx.args.platform, scope=ctx.args.scope,
                            predicate_type=predicate_type, cache=cache)


def _signature_line(s: SignatureResult) -> str:
    who = s.signer.get("key_id") or f"{s.signer.get('identity')} ({s.signer.get('issuer')})"
    log = f", log index {s.log['index']}" if s.log else ""
    return f"{s.kind} by {who}{log}; {s.via} {s.location}"


def _print_verdict(verdict: Verdict) -> None:
    status = "Verified" if verdict.ok else "Verification FAILED for"
    print(f"{status} {verdict.reference}{' (cached)' if verdict.cached else ''}")
    if verdict.tag_authority is not None:
        tuf = verdict.tag_authority
        print(f"  TUF: {tuf.get('error') or 'tag target ' + str(tuf.get('digest'))}")
    if not verdict.signatures_required:
        return
    for target in verdict.targets:
        print(f"  {target.role} {target.digest}: {'verified' if target.ok else 'NOT verified'}")
        for s in target.signatures:
            if s.ok:
                print(f"    ok      {_signature_line(s)}")
            else:
                print(f"    invalid {s.kind}; {s.via} {s.location}")
                for reason in s.reasons:
                    print(f"            - {reason}")
        for error in target.errors:
            print(f"    error   {error}")
        if verdict.signatures_required and not target.signatures:
            print("    (no signatures found)")


def _show_verdict(ctx: Context, verdict: Verdict) -> int:
    """The verdict as ``-o`` asks; the exit code says whether it verified."""
    if ctx.output == "json":
        print_json(verdict.to_json())
    else:
        _print_verdict(verdict)
    return 0 if verdict.ok else 1


def cmd_verify(ctx: Context) -> int:
    return _show_verdict(ctx, _verify(ctx, None))


def cmd_verify_attestation(ctx: Context) -> int:
    verdict = _verify(ctx, ctx.args.predicate_type)
    status = _show_verdict(ctx, verdict)
    if ctx.output != "json":  # the verified statements follow the verdict (JSON output holds them)
        for target in verdict.targets:
            for s in target.signatures:
                if s.ok and s.statement is not None:
                    print(json.dumps(s.statement, indent=2))
    return status


def cmd_sign_blob(ctx: Context) -> int:
    from engine.atomicfile import write_atomic

    from trust.sign import sign_blob
    from trust.untrusted import file_sha256

    path, out = Path(ctx.args.file), Path(ctx.args.bundle)
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    key = _load_key(ctx)
    raw = sign_blob(key, path)
    write_atomic(out, raw)
    if ctx.output == "json":
        print_json({"file": str(path), "sha256": file_sha256(path).hex(), "bundle": str(out),
                    "key_id": key.public.key_id})
    else:
        print(f"Wrote bundle {out}", file=sys.stderr)
    return 0


def cmd_verify_blob(ctx: Context) -> int:
    from trust.untrusted import file_sha256
    from trust.verify import verify_blob

    path = Path(ctx.args.file)
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    sha = file_sha256(path)
    result = verify_blob(path, Path(ctx.args.bundle), _requirements(ctx), sha256=sha)
    if ctx.output == "json":
        print_json({"file": str(path), "sha256": sha.hex(), "verified": result.ok,
                    "signature": result.to_json()})
    elif result.ok:
        print(f"Verified OK: {path} ({_signature_line(result)})")
    else:
        print(f"Verification FAILED: {path} against {result.location}")
        for reason in result.reasons:
            print(f"  - {reason}")
    return 0 if result.ok else 1
