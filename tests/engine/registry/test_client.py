"""The registry client against Debian's docker-registry: plain, basic auth, bearer tokens, TLS.

Images are put in the registry by skopeo (an independent implementation) wherever the point is to
read what someone else wrote, and read back by skopeo wherever the point is that we wrote it right.
"""

from __future__ import annotations

import json
import subprocess  # nosec B404 # skopeo with argument lists
from pathlib import Path
from typing import Callable

import pytest

from engine.reference import Reference
from engine.registry.client import RegistryClient
from engine.registry.credentials import Credentials, CredentialStore
from engine.registry.errors import AuthError, ManifestUnknownError, TLSError
from engine.registry.platform import Platform, PlatformError
from tests.engine.registry.fixtures import Pushed, make_config
from tests.engine.registry.oci import digest, make_image, push_index, push_parts
from tests.engine.registry.tokenauth import TokenRegistry
from tests.engine.layers.builders import file
from tests.support.registry import PASSWORD, USER, Registry, make_ca_and_server_cert

Make = Callable[..., RegistryClient]


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout  # nosec


def test_reads_what_skopeo_pushed(make_client: Make, pushed_busybox: Pushed) -> None:
    client = make_client()
    ref = Reference.parse(pushed_busybox.ref)
    resolved = client.resolve(ref)
    assert resolved.top.digest == pushed_busybox.digest == resolved.image.digest
    manifest = resolved.manifest
    config = json.loads(client.fetch_blob(ref, manifest.config))
    assert config["config"]["User"] == "1000:1000"
    assert len(manifest.layers) == len(config["rootfs"]["diff_ids"]) == 1
    with client.open_blob(ref, manifest.layers[0]) as reader:
        assert digest(reader.read()) == manifest.layers[0].digest
    by_digest = client.get_manifest(ref.with_digest(pushed_busybox.digest))
    assert by_digest.raw == resolved.top.raw
    head = client.head_manifest(ref)
    assert head is not None and head.digest == pushed_busybox.digest
    assert client.list_tags(ref) == ["latest"]
    assert client.blob_exists(ref, manifest.config.digest)
    assert not client.blob_exists(ref, "sha256:" + "0" * 64)
    # distribution 2.8 has no referrers API: None tells trust to use the tag schema
    assert client.referrers(ref, pushed_busybox.digest) is None


def test_missing_tag_and_repository(make_client: Make, registry: Registry) -> None:
    client = make_client()
    with pytest.raises(ManifestUnknownError, match=r"manifest 127\.0\.0\.1:\d+/ns/nothing:latest: not found"):
        client.get_manifest(Reference.parse(f"{registry.host}/ns/nothing"))
    assert client.head_manifest(Reference.parse(f"{registry.host}/ns/nothing")) is None


def test_push_monolithic_mount_and_chunked_read_back_by_skopeo(make_client: Make, registry: Registry,
                                                              tmp_path: Path) -> None:
    client = make_client()
    parts = make_image([[file("a", b"A" * 5000)], [file("b", b"B" * 300_000)]])
    first = Reference.parse(f"{registry.host}/push/one:v1")
    assert push_parts(client, first, parts) == ["uploaded"] * 3
    assert push_parts(client, first, parts) == ["exists"] * 3
    second = Reference.parse(f"{registry.host}/push/two:v1")
    assert push_parts(client, second, parts, mount_from=[first]) == ["mounted"] * 3
    third = Reference.parse(f"{registry.host}/push/three:v1")
    assert push_parts(client, third, parts, chunk_size=64 * 1024) == ["uploaded"] * 3
    for ref in (first, second, third):
        info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}"))
        assert info["Digest"] == parts.digest
        assert info["Layers"] == [digest(b) for b in parts.layers]
    skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{third}", f"oci:{tmp_path / 'oci'}:x")
    index = json.loads((tmp_path / "oci" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == parts.digest
    blob = tmp_path / "oci" / "blobs" / "sha256" / digest(parts.layers[1]).partition(":")[2]
    assert blob.read_bytes() == parts.layers[1]


def test_index_platform_selection(make_client: Make, registry: Registry) -> None:
    client = make_client()
    repo = Reference.parse(f"{registry.host}/multi/app:latest")
    amd, arm = make_image(arch="amd64"), make_image([[file("arm", b"arm")]], arch="arm64")
    index = push_index(client, repo, [(arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
                                      (amd, {"os": "linux", "architecture": "amd64"})])
    top_digest = digest(index)
    assert json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{repo}")) == json.loads(index)
    resolved = client.resolve(repo, Platform.parse("linux/amd64"))
    assert (resolved.top.digest, resolved.image.digest) == (top_digest, amd.digest)
    assert client.resolve(repo, Platform.parse("linux/arm64")).image.digest == arm.digest
    with pytest.raises(PlatformError, match="no manifest for platform linux/riscv64"):
        client.resolve(repo, Platform.parse("linux/riscv64"))


def test_basic_auth(make_client: Make, auth_registry: Registry, busybox_layout: Path, _auth_file: Path) -> None:
    ref = Reference.parse(f"{auth_registry.host}/secret/busybox:latest")
    from tests.support.images import skopeo_push

    pushed = skopeo_push(busybox_layout, "busybox", str(ref), creds=(USER, PASSWORD))
    with pytest.raises(AuthError, match=rf"{auth_registry.host} requires authentication \(run: stockade login"):
        make_client().get_manifest(ref)
    with pytest.raises(AuthError, match="authentication failed"):
        make_client(credentials=Credentials(USER, "wrong")).get_manifest(ref)
    CredentialStore(_auth_file).save(auth_registry.host, Credentials(USER, PASSWORD))
    client = make_client()
    client.check_login(auth_registry.host)
    assert client.get_manifest(ref).digest == pushed
    assert push_parts(client, ref.with_tag("ours"), make_image()) == ["uploaded"] * 2


def test_bearer_token_flow(make_client: Make, token_registry: TokenRegistry) -> None:
    ref = Reference.parse(f"{token_registry.host}/tok/app:v1")
    parts = make_image()
    with pytest.raises(AuthError, match="requires authentication"):  # anonymous tokens grant pull only
        push_parts(make_client(), ref, parts)
    writer = make_client(credentials=Credentials(USER, PASSWORD))
    push_parts(writer, ref, parts)
    assert any(c["sub"] == USER and {"type": "repository", "name": "tok/app", "actions": ["pull", "push"]}
               in c["access"] for c in token_registry.issued)  # type: ignore[operator]
    before = len(token_registry.issued)
    reader = make_client()
    resolved = reader.resolve(ref)
    assert resolved.image.digest == parts.digest
    reader.fetch_blob(ref, resolved.manifest.config)
    with reader.open_blob(ref, resolved.manifest.layers[0]) as blob:
        blob.read()
    assert len(token_registry.issued) == before + 1  # one anonymous pull token, reused for every request
    with pytest.raises(AuthError, match="the token service refused access as tester"):
        make_client(credentials=Credentials(USER, "wrong")).get_manifest(ref)
    make_client(credentials=Credentials(USER, PASSWORD)).check_login(token_registry.host)  # `login`
    with pytest.raises(AuthError, match="refused access as tester"):
        make_client(credentials=Credentials(USER, "wrong")).check_login(token_registry.host)


def test_tls_needs_the_ca(make_client: Make, tls_registry: Registry, busybox_layout: Path,
                          tmp_path: Path) -> None:
    from tests.support.images import skopeo_push

    assert tls_registry.ca_cert is not None
    ref = Reference.parse(f"{tls_registry.host}/tls/busybox:latest")
    pushed = skopeo_push(busybox_layout, "busybox", str(ref), tls_verify=False)
    with pytest.raises(TLSError, match=rf"{tls_registry.host}: certificate not trusted .*certs.d/"
                                       rf"{tls_registry.host}/ca.crt"):
        make_client().get_manifest(ref)
    certs = tmp_path / "certs.d"
    (certs / tls_registry.host).mkdir(parents=True)
    (certs / tls_registry.host / "ca.crt").write_bytes(tls_registry.ca_cert.read_bytes())
    assert make_client(make_config(certs_dirs=(str(certs),))).get_manifest(ref).digest == pushed
    assert make_client(cert_dir=certs / tls_registry.host).get_manifest(ref).digest == pushed
    assert make_client(tls_verify=False).get_manifest(ref).digest == pushed
    insecure = make_client(make_config(insecure=(tls_registry.host,)))
    assert insecure.get_manifest(ref).digest == pushed
    assert insecure.session(tls_registry.host).base == f"https://{tls_registry.host}"  # still TLS


def test_credentials_per_repository(make_client: Make, auth_registry: Registry, busybox_layout: Path,
                                    _auth_file: Path) -> None:
    """An auth.json entry for a namespace is used for its repositories (basic auth per request),
    the registry's entry for the others, in one client."""
    from tests.support.images import skopeo_push

    inside = Reference.parse(f"{auth_registry.host}/team/busybox:latest")
    outside = Reference.parse(f"{auth_registry.host}/other/busybox:latest")
    pushed = skopeo_push(busybox_layout, "busybox", str(inside), creds=(USER, PASSWORD))
    skopeo_push(busybox_layout, "busybox", str(outside), creds=(USER, PASSWORD))
    store = CredentialStore(_auth_file)
    store.save(auth_registry.host, Credentials(USER, "wrong"))
    store.save(f"{auth_registry.host}/team", Credentials(USER, PASSWORD))
    client = make_client()
    assert client.get_manifest(inside).digest == pushed
    with pytest.raises(AuthError, match="authentication failed"):
        client.get_manifest(outside)
    assert client.get_manifest(inside).digest == pushed  # the failure cached nothing wrong


def test_system_trust_from_the_hashed_directory_or_the_bundle(make_client: Make, tls_registry: Registry,
                                                             busybox_layout: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """System CAs come from OpenSSL's hashed directory when there is one (read per issuer, not all
    at start) and from the bundle file otherwise or when SSL_CERT_FILE names one: either way a CA
    there is trusted and a CA missing from it is not."""
    from tests.support.images import skopeo_push

    assert tls_registry.ca_cert is not None
    ref = Reference.parse(f"{tls_registry.host}/tls/system:latest")
    pushed = skopeo_push(busybox_layout, "busybox", str(ref), tls_verify=False)
    hashed, empty = tmp_path / "hashed", tmp_path / "empty-hashed"
    hashed.mkdir()
    empty.mkdir()
    (hashed / "test-ca.pem").write_bytes(tls_registry.ca_cert.read_bytes())
    subprocess.run(["openssl", "rehash", str(hashed)], check=True, capture_output=True)  # nosec
    other_ca = make_ca_and_server_cert(tmp_path / "other")[0]
    (empty / "other-ca.pem").write_bytes(other_ca.read_bytes())
    subprocess.run(["openssl", "rehash", str(empty)], check=True, capture_output=True)  # nosec
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(hashed))
    assert make_client().get_manifest(ref).digest == pushed
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    with pytest.raises(TLSError, match="certificate not trusted"):
        make_client().get_manifest(ref)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.ca_cert))  # a bundle file wins
    assert make_client().get_manifest(ref).digest == pushed
