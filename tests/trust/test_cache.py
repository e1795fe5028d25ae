"""The verification cache: positive verdicts only, keyed by everything they depend on, until they
expire; and a hit loads neither sigstore nor tuf and needs no registry."""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 # runs our own CLI in a fresh interpreter, argument lists
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.config import Paths, load_config
from engine.reference import Reference
from engine.registry import RegistryClient
from tests.support.cli import REPO, stockade
from tests.support.images import skopeo_push
from tests.support.registry import start_registry
from tests.trust.sigstore_instance import SigstoreInstance
from trust import legacy, simplesigning
from trust.untrusted import b64
from trust.cache import VerificationCache
from trust.requirements import Requirements
from trust.verdict import SignatureResult, TargetResult, Verdict
from trust.verify import verify_image

DIGEST = "sha256:" + "ab" * 32
WHO, ISSUER = "cache@example.com", "https://issuer.example"


def _verdict(ok: bool = True, expires: float = 2000.0) -> Verdict:
    sig = SignatureResult("cosign-keyed", "legacy-tag", "r:sha256-ab.sig", signer={"key_id": "k"})
    if not ok:
        sig.fail("bad")
    return Verdict("r:1", DIGEST, [TargetResult(DIGEST, "m", "manifest", [sig])], expires=expires)


def test_roundtrip_and_expiry(tmp_path: Path) -> None:
    now = [1000.0]
    cache = VerificationCache(tmp_path / "c", clock=lambda: now[0])
    parts = {"requirements": {"keys": ["k"]}, "root": "r"}
    cache.put(DIGEST, parts, _verdict())
    hit = cache.get(DIGEST, parts)
    assert hit is not None and hit.ok and hit.cached and hit.to_json()["targets"] == _verdict().to_json()["targets"]
    assert oct((tmp_path / "c").stat().st_mode & 0o777) == "0o700"
    assert cache.get(DIGEST, {**parts, "root": "other"}) is None  # another trusted root
    assert cache.get(DIGEST, {**parts, "requirements": {"keys": ["k2"]}}) is None  # other requirements
    assert cache.get("sha256:" + "cd" * 32, parts) is None  # another digest
    now[0] = 2000.0
    assert cache.get(DIGEST, parts) is None  # expired, and removed
    assert not list((tmp_path / "c").glob("*.json"))


def test_negative_verdicts_are_not_stored(tmp_path: Path) -> None:
    cache = VerificationCache(tmp_path, clock=lambda: 1000.0)
    cache.put(DIGEST, {}, _verdict(ok=False))
    cache.put(DIGEST, {"x": 1}, _verdict(expires=999.0))
    assert not list(tmp_path.glob("*.json"))


def test_a_corrupt_entry_is_a_miss(tmp_path: Path) -> None:
    cache = VerificationCache(tmp_path, clock=lambda: 1000.0)
    cache.put(DIGEST, {}, _verdict())
    (entry,) = tmp_path.glob("*.json")
    entry.write_text("{")
    assert cache.get(DIGEST, {}) is None
    entry.write_text(json.dumps({"format": 1, "digest": DIGEST, "expires": "soon"}))
    assert cache.get(DIGEST, {}) is None



def _foreign_entries(entry: Path) -> list[tuple[str, Any]]:
    """Ways another user's hand shows on an entry: each must make it a miss."""
    def chown(path: Path) -> None:
        os.chown(path, 65534, 65534)  # written by another user (nobody)

    def widen(path: Path) -> None:
        path.chmod(0o666)  # anyone could have rewritten it

    def link(path: Path) -> None:
        planted = path.with_name("planted")
        path.rename(planted)
        path.symlink_to(planted.name)  # a symlink planted in place of the entry

    return [("owned by another user", chown), ("group/world-writable", widen), ("a symlink", link)]


@pytest.mark.parametrize("case", range(3))
def test_an_entry_another_user_could_have_written_is_a_miss(tmp_path: Path, case: int) -> None:
    """A positive verdict in a file another user owns or may write (a cache directory under a shared
    --root, a pre-created XDG directory) must not turn a failure into a pass."""
    cache = VerificationCache(tmp_path / "c", clock=lambda: 1000.0)
    cache.put(DIGEST, {}, _verdict())
    (entry,) = (tmp_path / "c").glob("*.json")
    assert cache.get(DIGEST, {}) is not None
    what, tamper = _foreign_entries(entry)[case]
    tamper(entry)
    assert cache.get(DIGEST, {}) is None, what


@pytest.mark.parametrize("case", range(3))
def test_an_admission_entry_another_user_could_have_written_is_a_miss(tmp_path: Path, case: int) -> None:
    from stockade.gatecache import AdmissionCache

    cache = AdmissionCache(tmp_path / "a", clock=lambda: 1000.0)
    material = {"document": {"image": "r:1"}}
    cache.put(material, {"allowed": True}, depends=[], expires=2000.0)
    (entry,) = (tmp_path / "a").glob("*.json")
    assert cache.get(material) == {"allowed": True}
    what, tamper = _foreign_entries(entry)[case]
    tamper(entry)
    assert cache.get(material) is None, what



@pytest.mark.parametrize("which", ["verify", "admission"])
def test_a_cache_directory_planted_as_a_symlink_or_owned_by_another_user_is_left_alone(
        tmp_path: Path, which: str) -> None:
    """Storing narrows the cache directory to 0700: through a symlink another user planted, that
    chmod (and the entry) would land on whatever it points at; in a directory another user owns, the
    entry would be theirs to rewrite. Neither is written to."""
    from stockade.gatecache import AdmissionCache

    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    victim.chmod(0o755)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / which).symlink_to(victim)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)

    def store(root: Path) -> None:
        if which == "verify":
            VerificationCache.for_paths(root).put(DIGEST, {}, _verdict(expires=4e9))
        else:
            AdmissionCache.for_paths(root).put({"m": 1}, {"allowed": True}, depends=[], expires=4e9)

    store(tmp_path / "c")
    assert victim.stat().st_mode & 0o777 == 0o755 and not list(victim.iterdir())
    (foreign / which).mkdir()
    os.chown(foreign / which, 65534, 65534)
    store(foreign)
    assert not list((foreign / which).iterdir())


@pytest.fixture
def own_registry(tmp_path: Path) -> Any:
    reg = start_registry(tmp_path / "registry")
    yield reg
    reg.stop()


def test_a_hit_needs_no_registry(own_registry: Any, busybox_layout: Path, tmp_path: Path, ecdsa_key: Any) -> None:
    ref_text = f"{own_registry.host}/c/busybox:1"
    digest = skopeo_push(busybox_layout, "busybox", ref_text)
    client = RegistryClient(load_config(), Paths.default(root=tmp_path / "store"))
    ref = Reference.parse(ref_text).with_digest(digest)
    payload = simplesigning.build(ref.name, digest)
    legacy.append(client, ref, digest, ".sig", payload, simplesigning.MEDIA_TYPE,
                  {legacy.SIGNATURE: b64(ecdsa_key.sign(payload))})
    cache = VerificationCache(tmp_path / "cache")
    req = Requirements(keys=(ecdsa_key.public,))
    first = verify_image(client, ref, req, cache=cache)
    assert first.ok and not first.cached
    own_registry.stop()  # from now on any registry access fails
    second = verify_image(client, ref, req, cache=cache)
    assert second.ok and second.cached
    assert second.targets[0].signatures[0].signer == {"key_id": ecdsa_key.public.key_id}
    with pytest.raises(Exception):
        verify_image(client, ref, req)  # without the cache it has to ask the (stopped) registry
    client.close()


PROBE = """
import json, sys
from stockade.cli import main
rc = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sigstore", "sigstore_models", "tuf", "securesystemslib"})
print(json.dumps({"rc": rc, "heavy": heavy}), file=sys.stderr)
"""


def _probe(*args: Any) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], env=env, capture_output=True,  # nosec B603
                          text=True, timeout=120, cwd=REPO)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_a_keyless_hit_imports_neither_sigstore_nor_tuf(registry: Any, busybox_layout: Path, tmp_path: Path,
                                                        client: Any) -> None:
    ref_text = f"{registry.host}/c/keyless:1"
    digest = skopeo_push(busybox_layout, "busybox", ref_text)
    ref = Reference.parse(ref_text)
    instance = SigstoreInstance()
    root = instance.write_trusted_root(tmp_path / "root.json")
    instance.sign_image_legacy(client, ref, digest, WHO, ISSUER)
    args = ["--root", tmp_path / "store", "verify", f"{ref_text}@{digest}", "--certificate-identity", WHO,
            "--certificate-oidc-issuer", ISSUER, "--trusted-root", root, "-o", "json"]
    cold = _probe(*args)
    assert cold["rc"] == 0 and "sigstore" in cold["heavy"]  # a miss really does use sigstore (and its tuf)
    warm = _probe(*args)
    assert warm == {"rc": 0, "heavy": []}
    r = stockade(*args)
    assert json.loads(r.stdout)["cached"] is True
    r = stockade(*args[:-2], "--no-cache", "-o", "json")
    assert json.loads(r.stdout)["cached"] is False


def _sign_naming(client: Any, ref: Reference, digest: str, named: Reference, key: Any) -> None:
    """A legacy signature of ``digest`` in ``ref``'s repository whose payload names ``named``."""
    payload = simplesigning.build(named.name, digest)
    legacy.append(client, ref, digest, ".sig", payload, simplesigning.MEDIA_TYPE,
                  {legacy.SIGNATURE: b64(key.sign(payload))})


def test_check_reference_verdicts_do_not_carry_to_another_repository(
        registry: Any, busybox_layout: Path, tmp_path: Path, ecdsa_key: Any, client: Any) -> None:
    """With --check-reference the payload must name the repository, so a positive verdict for
    repository A says nothing about B, even for the same digest and the same signature bytes."""
    a_text, b_text = f"{registry.host}/c/ref-a:1", f"{registry.host}/c/ref-b:1"
    digest = skopeo_push(busybox_layout, "busybox", a_text)
    assert skopeo_push(busybox_layout, "busybox", b_text) == digest
    a, b = (Reference.parse(t).with_digest(digest) for t in (a_text, b_text))
    for repo in (a, b):  # B carries A's signature, as a mirror copying .sig tags does
        _sign_naming(client, repo, digest, a, ecdsa_key)
    cache = VerificationCache(tmp_path / "cache")
    strict = Requirements(keys=(ecdsa_key.public,), check_reference=True)
    assert verify_image(client, a, strict, cache=cache).ok
    assert verify_image(client, a, strict, cache=cache).cached
    other = verify_image(client, b, strict, cache=cache)
    assert not other.ok and not other.cached
    reasons = [r for t in other.targets for s in t.signatures for r in s.reasons]
    assert reasons == [f"the payload names {a.name!r}, not {b.name!r} (--check-reference)"]
    # Without --check-reference a digest's verdict holds wherever the digest is pulled from.
    plain = Requirements(keys=(ecdsa_key.public,))
    assert verify_image(client, a, plain, cache=cache).ok
    assert verify_image(client, b, plain, cache=cache).cached


def test_the_key_names_the_repository_only_under_check_reference(ecdsa_key: Any) -> None:
    from trust.verify import cache_key_parts

    def parts(text: str, **req: Any) -> dict[str, Any]:
        return cache_key_parts(Reference.parse(text), Requirements(keys=(ecdsa_key.public,), **req),
                               platform=None, scope="resolved", predicate_type=None)

    a, b = f"r.example/a@{DIGEST}", f"r.example/b@{DIGEST}"
    assert parts(a) == parts(b)
    assert parts(a, check_reference=True) != parts(b, check_reference=True)
    assert parts(a, check_reference=True)["repository"] == "r.example/a"


def test_every_requirement_is_in_the_key_and_one_key_in_two_encodings_is_one(
        ecdsa_key: Any, ed25519_key: Any, tmp_path: Path) -> None:
    """A verdict reached under weaker requirements must never answer stronger ones: each field the
    verdict depends on changes the key. The same key read from PEM, from DER or twice names one key
    set (key ids are hashes of the re-encoded DER form)."""
    from cryptography.hazmat.primitives import serialization

    from trust.identity import IdentityMatcher
    from trust.keys import PublicKey
    from trust.trustroot import TrustedRoot
    from trust.verify import cache_key_parts

    ref = Reference.parse(f"r.example/a:1@{DIGEST}")
    other_root = TrustedRoot.load(SigstoreInstance().write_trusted_root(tmp_path / "root.json"))
    who = IdentityMatcher(identity=WHO, issuer=ISSUER)

    def key(req: Requirements, **kw: Any) -> str:
        parts = cache_key_parts(ref, req, **{"platform": None, "scope": "resolved", "predicate_type": None, **kw})
        return VerificationCache(tmp_path).key(DIGEST, parts)

    base = Requirements(keys=(ecdsa_key.public,), identities=(who,))
    variants = {
        "another key": Requirements(keys=(ed25519_key.public,), identities=(who,)),
        "one more key": Requirements(keys=(ecdsa_key.public, ed25519_key.public), identities=(who,)),
        "no identity": Requirements(keys=(ecdsa_key.public,)),
        "another identity": Requirements(keys=(ecdsa_key.public,), identities=(IdentityMatcher(identity="x@y", issuer=ISSUER),)),
        "identity as regexp": Requirements(keys=(ecdsa_key.public,), identities=(IdentityMatcher(identity_regexp=WHO, issuer=ISSUER),)),
        "another issuer": Requirements(keys=(ecdsa_key.public,), identities=(IdentityMatcher(identity=WHO, issuer="https://x"),)),
        "require tlog": Requirements(keys=(ecdsa_key.public,), identities=(who,), require_tlog=True),
        "check reference": Requirements(keys=(ecdsa_key.public,), identities=(who,), check_reference=True),
        "ignore sct": Requirements(keys=(ecdsa_key.public,), identities=(who,), ignore_sct=True),
        "another trusted root": Requirements(keys=(ecdsa_key.public,), identities=(who,), trusted_root=other_root),
    }
    keys = {name: key(req) for name, req in variants.items()}
    keys.update({"platform": key(base, platform="linux/arm64"), "scope": key(base, scope="both"),
                 "attestation": key(base, predicate_type="https://slsa.dev/provenance/v1")})
    assert len(set(keys.values()) | {key(base)}) == len(keys) + 1, keys
    der = ecdsa_key.public.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    point = ecdsa_key.public.key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    algorithm = der[2:23]  # the P-256 AlgorithmIdentifier; then the point, compressed this time
    compressed = bytes([0x30, len(algorithm) + 3 + len(point)]) + algorithm + bytes([0x03, 1 + len(point), 0]) + point
    for same in (PublicKey.from_der(der), PublicKey.from_pem(ecdsa_key.public.pem), PublicKey.from_der(compressed)):
        assert key(Requirements(keys=(same,), identities=(who,))) == key(base)
        assert same.key_id == ecdsa_key.public.key_id


def test_a_warm_hit_reads_no_trusted_root_and_hashes_it_once(
        own_registry: Any, busybox_layout: Path, tmp_path: Path, ecdsa_key: Any) -> None:
    """The trusted root is part of the key; a hit (the warm run path) must not re-read the default
    root's file or re-hash any root: it is loaded and hashed once per process."""
    from trust.trustroot import TrustedRoot, public_good_path

    ref_text = f"{own_registry.host}/c/warm:1"
    digest = skopeo_push(busybox_layout, "busybox", ref_text)
    client = RegistryClient(load_config(), Paths.default(root=tmp_path / "store"))
    ref = Reference.parse(ref_text).with_digest(digest)
    _sign_naming(client, ref, digest, ref, ecdsa_key)
    cache = VerificationCache(tmp_path / "cache")
    default = Requirements(keys=(ecdsa_key.public,))
    assert verify_image(client, ref, default, cache=cache).ok
    opened: list[str] = []
    watching = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if watching[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(hook)  # audit hooks cannot be removed; `watching` switches this one off
    try:
        for _ in range(3):
            assert verify_image(client, ref, default, cache=cache).cached
    finally:
        watching[0] = False
    assert str(public_good_path()) not in opened
    assert {Path(p).parent for p in opened} == {tmp_path / "cache"}  # only the cache entry is read
    assert TrustedRoot.default() is TrustedRoot.default()
    explicit = TrustedRoot.load(public_good_path())
    assert "sha256" not in vars(explicit)  # hashed on first use ...
    assert explicit.sha256 is explicit.sha256  # ... and then kept
    client.close()
