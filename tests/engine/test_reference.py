"""References: Docker's normalization, the canonical form, and one precise error per malformed form."""

from __future__ import annotations

import pytest

from engine.errors import StockadeError
from engine.reference import Reference, ReferenceError, validate_digest

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("text,registry,repository,tag,digest,canonical", [
    ("busybox", "docker.io", "library/busybox", "latest", None, "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "docker.io/library/busybox:1.36"),
    ("user/app", "docker.io", "user/app", "latest", None, "docker.io/user/app:latest"),
    ("index.docker.io/nginx", "docker.io", "library/nginx", "latest", None,
     "docker.io/library/nginx:latest"),
    ("docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest"),
    (f"127.0.0.1:5000/ns/repo:tag@{D}", "127.0.0.1:5000", "ns/repo", "tag", D,
     f"127.0.0.1:5000/ns/repo:tag@{D}"),
    (f"busybox@{D}", "docker.io", "library/busybox", None, D, f"docker.io/library/busybox@{D}"),
    ("localhost/app", "localhost", "app", "latest", None, "localhost/app:latest"),
    ("localhost:5000/a/b/c:v1.2-rc_3", "localhost:5000", "a/b/c", "v1.2-rc_3", None,
     "localhost:5000/a/b/c:v1.2-rc_3"),
    # Docker reads "localhost:5000" alone as the image localhost with tag 5000.
    ("localhost:5000", "docker.io", "library/localhost", "5000", None, "docker.io/library/localhost:5000"),
    ("quay.io/a__b/c-d.e:Tag_1", "quay.io", "a__b/c-d.e", "Tag_1", None, "quay.io/a__b/c-d.e:Tag_1"),
    ("[::1]:5000/x:y", "[::1]:5000", "x", "y", None, "[::1]:5000/x:y"),
])
def test_normalization(text: str, registry: str, repository: str, tag: str | None, digest: str | None,
                       canonical: str) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert str(ref) == canonical
    assert ref.name == f"{registry}/{repository}"
    assert Reference.parse(str(ref)) == ref  # the canonical form is a fixed point


def test_identifier_prefers_digest_and_helpers() -> None:
    ref = Reference.parse(f"r.io/a:t@{D}")
    assert ref.identifier == D
    assert ref.without_digest().identifier == "t"
    assert ref.with_tag("v2") == Reference("r.io", "a", "v2", None)
    other = "sha256:" + "b" * 64
    assert ref.with_digest(other).digest == other
    with pytest.raises(ReferenceError):
        ref.with_tag("-bad")


@pytest.mark.parametrize("text,message", [
    ("", "invalid reference: it is empty"),
    ("   ", "invalid reference: it is empty"),
    ("bad name", "it contains white space"),
    ("BusyBox", "repository name 'library/BusyBox' must be lower-case"),
    ("reg.io/Ns/app", "repository name 'Ns/app' must be lower-case"),
    ("busybox:", "the tag after ':' is empty"),
    ("busybox:-x", "tag '-x' must be 1 to 128 characters"),
    ("busybox:" + "t" * 129, "must be 1 to 128 characters"),
    ("a//b", "empty path component in 'a//b'"),
    ("/a", "empty path component"),
    ("a/", "empty path component"),
    ("reg.io/a..b", "path component 'a..b' may hold only"),
    ("reg.io/a-/b", "path component 'a-' may hold only"),
    ("https://reg.io/app", "a reference has no scheme; drop 'https://'"),
    ("reg.io:99999/app", "registry port '99999' is not a number from 1 to 65535"),
    ("reg.io:0/app", "registry port '0'"),
    ("reg.io:\u00b2/app", "registry port '\u00b2' is not a number"),  # str.isdigit() says yes; int() no
    ("-reg.io:5000/app", "malformed registry host '-reg.io'"),
    ("[::1/app", "malformed IPv6 registry host"),
    ("busybox@", "invalid digest '' in reference 'busybox@': expected algorithm:hex"),
    ("busybox@sha256:abc", "sha256 needs 64 hex digits, got 3"),
    ("busybox@md5:" + "a" * 32, "unsupported algorithm 'md5'"),
    ("busybox@sha256:" + "A" * 64, "the encoded part must be lower-case hex"),
    ("busybox@sha256:" + "g" * 64, "the encoded part must be lower-case hex"),
    (f"busybox@{D}@{D}", "more than one '@'"),
    (":tag", "the repository name is empty"),
    ("a" * 256, "the name is 256 characters long (at most 255)"),
])
def test_each_malformed_form_has_its_own_message(text: str, message: str) -> None:
    with pytest.raises(ReferenceError) as info:
        Reference.parse(text)
    assert message in str(info.value)
    assert isinstance(info.value, StockadeError) and info.value.exit_code == 1
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("digest", [D, "sha512:" + "0" * 128])
def test_validate_digest_accepts_registered_algorithms(digest: str) -> None:
    assert validate_digest(digest) == digest


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "sha256", "sha256:", ":abc",
                                    "SHA256:" + "a" * 64, "sha512:" + "a" * 64])
def test_validate_digest_refuses_what_could_become_a_path(digest: str) -> None:
    with pytest.raises(ReferenceError):
        validate_digest(digest)
