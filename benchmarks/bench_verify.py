"""Image signature verification: keyed legacy and keyless bundles, cold and warm, against
sigstore-python's own command line verifying the same keyless bundle in the same rounds.

Set-up (real parts, loopback only): Debian's registry with busybox pushed by skopeo to two
repositories; one gets a keyed legacy ``.sig`` signature, the other a keyless DSSE bundle (cosign
v3's layout) from a private Sigstore instance (tests/trust/sigstore_instance.py: CA, CT log, Rekor
with inclusion proofs) whose trusted_root.json both verifiers are given. The same bundle is written
to a file beside the image manifest's bytes, which are its in-toto subject.

Cases, interleaved in the same rounds (CLI = a fresh process, as CI runs it):

* ``keyed-cold`` / ``keyless-cold``: ``stockade verify IMAGE --no-cache``: resolve the tag, find
  signatures (referrers tag schema, legacy tag), verify; keyless imports sigstore-python;
* ``keyed-warm`` / ``keyless-warm``: ``stockade verify IMAGE@DIGEST`` with the verdict cached: the
  path ``stockade run`` takes for an image verified before (no registry request, no sigstore);
* ``keyless-verify-blob``: ``stockade verify-blob MANIFEST --bundle B``, the same bundle with no
  registry, the like-for-like row against the peer;
* ``sigstore-cli``: ``python -m sigstore --trust-config CFG verify identity MANIFEST --bundle B
  --offline`` (sigstore-python 4.5.1 takes a custom trusted root inside a client trust config);
* ``stockade-version``: the command line's start-up alone;
* ``*-in-process``: ``verify_image`` in this process (cold and cache hit), and sigstore-python's
  ``Verifier.verify_dsse`` on the same bundle, both reusing their verifier: verifications per second
  without process start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.harness import PYTHON, REPO, Benchmark, run_timed

# The venv's interpreter (harness.PYTHON resolves the venv symlink to the base interpreter, which
# does not see the venv's packages); bin/python is a symlink, not a shim, so it costs nothing.
INTERPRETER = sys.executable if sys.prefix != sys.base_prefix else PYTHON
WHO, ISSUER = "release@bench.example", "https://issuer.bench.example"


def _cli(*args: str | Path) -> list[str]:
    return [INTERPRETER, "-m", "stockade", *map(str, args)]


def _timed(fn: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        if not fn():
            raise RuntimeError("verification failed during the benchmark")
        return time.perf_counter() - start
    return run


def _signed_images(work: Path, registry_host: str) -> dict[str, Any]:
    """Push busybox twice and sign one copy with a key, the other keylessly; write the files."""
    from engine.config import Paths, load_config
    from engine.reference import Reference
    from engine.registry import RegistryClient
    from tests.support.images import make_busybox_layout, skopeo_push
    from tests.trust.sigstore_instance import SigstoreInstance
    from trust import dsse, keys, referrers, sign

    layout = make_busybox_layout(work / "image")
    keyed, keyless = f"{registry_host}/bench/keyed:1", f"{registry_host}/bench/keyless:1"
    digest = skopeo_push(layout, "busybox", keyed)
    skopeo_push(layout, "busybox", keyless)
    client = RegistryClient(load_config(), Paths.default(root=work / "setup"))
    key = keys.generate()
    _, pub = keys.write_key_pair(key, b"bench", work / "signer")
    sign.sign_image(client, Reference.parse(keyed), key)
    instance = SigstoreInstance()
    root = instance.write_trusted_root(work / "trusted_root.json")
    manifest = client.get_manifest(Reference.parse(keyless))
    statement = dsse.statement(Reference.parse(keyless).name, digest.partition(":")[2], dsse.COSIGN_SIGN_PREDICATE)
    bundle = instance.dsse_bundle(dsse.INTOTO_PAYLOAD_TYPE, statement, WHO, ISSUER)
    referrers.push_bundle(client, Reference.parse(keyless), manifest.descriptor, bundle, dsse.COSIGN_SIGN_PREDICATE)
    client.close()
    (work / "bundle.json").write_bytes(bundle)
    (work / "manifest.json").write_bytes(manifest.raw)
    assert hashlib.sha256(manifest.raw).hexdigest() == digest.partition(":")[2]
    signing_config = (Path(sys.modules["trust.trustroot"].public_good_path()).parent / "signing_config.v0.2.json")
    (work / "trust_config.json").write_text(json.dumps({
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": json.loads(root.read_text()), "signingConfig": json.loads(signing_config.read_text())}))
    return {"keyed": keyed, "keyless": keyless, "digest": digest, "pub": pub, "root": root, "key": key}


def main(rounds: int = 9) -> dict[str, object]:
    from tests.support.registry import start_registry

    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    (work / "empty.toml").write_text("")
    os.environ["STOCKADE_CONFIG"] = str(work / "empty.toml")  # this run's own, whatever ran before
    registry = start_registry(work / "registry")
    try:
        return _run(work, registry.host, rounds)
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, registry_host: str, rounds: int) -> dict[str, object]:
    import trust.trustroot  # noqa: F401 - _signed_images reads the embedded root's location

    s = _signed_images(work, registry_host)
    env = {**os.environ, "STOCKADE_CONFIG": str(work / "empty.toml"), "PYTHONPATH": str(REPO)}
    identity = ["--certificate-identity", WHO, "--certificate-oidc-issuer", ISSUER, "--trusted-root", s["root"]]
    pinned_keyed, pinned_keyless = f"{s['keyed']}@{s['digest']}", f"{s['keyless']}@{s['digest']}"
    warm = work / "store-warm"
    for argv in (_cli("--root", warm, "verify", pinned_keyed, "--key", s["pub"]),
                 _cli("--root", warm, "verify", pinned_keyless, *identity)):
        run_timed(argv, env=env)  # fill the cache once
    cold = work / "store-cold"
    peer = [INTERPRETER, "-m", "sigstore", "--trust-config", str(work / "trust_config.json"), "verify", "identity",
            str(work / "manifest.json"), "--bundle", str(work / "bundle.json"), "--cert-identity", WHO,
            "--cert-oidc-issuer", ISSUER, "--offline"]

    bench = Benchmark("verify", "verify an image's signature: keyed legacy and keyless bundle, cold and warm")
    bench.case("keyed-cold", lambda: run_timed(_cli("--root", cold, "verify", s["keyed"], "--key", s["pub"],
                                                    "--no-cache"), env=env))
    bench.case("keyed-warm", lambda: run_timed(_cli("--root", warm, "verify", pinned_keyed, "--key", s["pub"]),
                                               env=env))
    bench.case("keyless-cold", lambda: run_timed(_cli("--root", cold, "verify", s["keyless"], *identity,
                                                      "--no-cache"), env=env))
    bench.case("keyless-warm", lambda: run_timed(_cli("--root", warm, "verify", pinned_keyless, *identity), env=env))
    bench.case("keyless-verify-blob", lambda: run_timed(_cli("verify-blob", work / "manifest.json", "--bundle",
                                                             work / "bundle.json", *identity), env=env))
    bench.case("sigstore-cli", lambda: run_timed(peer, env=env))
    bench.case("stockade-version", lambda: run_timed(_cli("version"), env=env))
    _in_process_cases(bench, work, s)
    bench.notes.update({"sigstore-python": _version("sigstore"), "registry": "docker-registry on 127.0.0.1",
                        "warm": "verdict cached, image pinned by digest (no registry request)",
                        "bundle": "keyless DSSE bundle, private Sigstore instance, same file for both CLIs"})
    stats = bench.run(rounds=rounds, warmup=1)
    per_second = {name: round(1 / st.median, 1) for name, st in stats.items()}
    print("  verifications per second: " + ", ".join(f"{k} {v}" for k, v in per_second.items()))
    return bench.report(stats, [("keyless-cold", "sigstore-cli"), ("keyless-verify-blob", "sigstore-cli"),
                                ("keyless-warm", "sigstore-cli"), ("keyed-warm", "keyed-cold"),
                                ("keyless-in-process-cold", "sigstore-in-process")],
                        extra={"verifications_per_second": per_second})


def _in_process_cases(bench: Benchmark, work: Path, s: dict[str, Any]) -> None:
    from engine.config import Paths, load_config
    from engine.reference import Reference
    from engine.registry import RegistryClient
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    from trust.cache import VerificationCache
    from trust.identity import IdentityMatcher, SigstorePolicy
    from trust.requirements import Requirements
    from trust.trustroot import TrustedRoot
    from trust.verify import verify_image

    client = RegistryClient(load_config(), Paths.default(root=work / "in-process"))
    root = TrustedRoot.load(s["root"])
    keyed = Requirements(keys=(s["key"].public,))
    matcher = (IdentityMatcher(identity=WHO, issuer=ISSUER),)
    keyless = Requirements(identities=matcher, trusted_root=root)
    cache = VerificationCache(work / "in-process-cache")
    pinned = Reference.parse(s["keyed"]).with_digest(s["digest"])
    verify_image(client, pinned, keyed, cache=cache)
    raw = (work / "bundle.json").read_bytes()
    verifier = Verifier(trusted_root=root.sigstore())
    policy = SigstorePolicy(matcher)

    bench.case("keyed-in-process-cold", _timed(lambda: verify_image(client, s["keyed"], keyed).ok))
    bench.case("keyed-in-process-warm", _timed(lambda: verify_image(client, pinned, keyed, cache=cache).cached))
    bench.case("keyless-in-process-cold", _timed(lambda: verify_image(client, s["keyless"], keyless).ok))
    bench.case("sigstore-in-process", _timed(lambda: verifier.verify_dsse(Bundle.from_json(raw), policy)))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
