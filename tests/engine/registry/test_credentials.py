"""Credentials: Stockade's auth file (0600, atomic), Docker's config.json and credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from engine.registry.credentials import Credentials, CredentialStore, docker_config_path
from engine.registry.errors import AuthError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_save_is_private_atomic_and_docker_shaped(tmp_path: Path) -> None:
    auth = tmp_path / "conf" / "auth.json"
    store = CredentialStore(auth, tmp_path / "none.json")
    store.save("127.0.0.1:5000", Credentials("alice", "s3cret:with:colons"))
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    assert stat.S_IMODE(auth.parent.stat().st_mode) == 0o700
    assert json.loads(auth.read_text()) == {"auths": {"127.0.0.1:5000": {"auth": b64("alice:s3cret:with:colons")}}}
    assert sorted(os.listdir(auth.parent)) == ["auth.json"]  # no temporary left behind
    assert store.get("127.0.0.1:5000") == Credentials("alice", "s3cret:with:colons")
    store.save("https://index.docker.io/v1/", Credentials("bob", "pw"))
    assert store.registries() == ["127.0.0.1:5000", "docker.io"]
    assert store.remove("docker.io") and not store.remove("docker.io")
    assert "s3cret" not in repr(store.get("127.0.0.1:5000"))


def test_docker_config_is_read_and_stockade_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_dir))
    assert docker_config_path() == docker_dir / "config.json"
    (docker_dir / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpw")},
        "reg.example:5000": {"auth": b64("docker:pw")},
        "token.example": {"identitytoken": "refresh-me"}}}))
    store = CredentialStore(tmp_path / "auth.json")
    assert store.get("docker.io") == Credentials("hubuser", "hubpw")
    assert store.get("reg.example:5000") == Credentials("docker", "pw")
    assert store.get("token.example") == Credentials("<token>", "", "refresh-me")
    assert store.get("other.example") is None
    store.save("reg.example:5000", Credentials("mine", "pw2"))
    assert store.get("reg.example:5000") == Credentials("mine", "pw2")


def _helper(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def test_credential_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    _helper(bin_dir, "pass", 'read server\n'
            '[ "$1" = get ] || exit 3\n'
            'case "$server" in\n'
            '  reg.example) echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"helped\\",\\"Secret\\":\\"pw\\"}";;\n'
            '  https://index.docker.io/v1/) echo "{\\"Username\\":\\"<token>\\",\\"Secret\\":\\"rt\\"}";;\n'
            '  *) echo "credentials not found in native keychain"; exit 1;;\n'
            'esac\n')
    _helper(bin_dir, "broken", 'echo "not json"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {"reg.example": "pass", "bad.example": "broken"},
                                  "credsStore": "pass"}))
    store = CredentialStore(tmp_path / "auth.json", config)
    assert store.get("reg.example") == Credentials("helped", "pw")
    assert store.get("docker.io") == Credentials("<token>", "", "rt")  # via credsStore
    assert store.get("unknown.example") is None
    with pytest.raises(AuthError, match="docker-credential-broken printed malformed output"):
        store.get("bad.example")
    config.write_text(json.dumps({"credsStore": "missing"}))
    with pytest.raises(AuthError, match="docker-credential-missing .* is not installed"):
        store.get("reg.example")


@pytest.mark.parametrize("content,message", [
    ("{not json", "is not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"auths": {"h": {"auth": "!!!"}}}', "entry 'h' has a malformed auth value"),
    ('{"auths": {"h": {"auth": "' + b64("nocolon") + '"}}}', "auth is not user:password"),
    ('{"auths": []}', "'auths' must be an object"),
])
def test_damaged_files_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    auth = tmp_path / "auth.json"
    auth.write_text(content)
    with pytest.raises(AuthError) as info:
        CredentialStore(auth, tmp_path / "none.json").get("h")
    assert str(auth) in str(info.value) and message in str(info.value)


def test_repository_keys_longest_match_wins(tmp_path: Path) -> None:
    """containers-auth.json(5): a key may name a namespace or a repository; the most specific key
    that is the repository or one of its parents wins, then the registry's own entry."""
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {
        "reg.example:5000": {"auth": b64("host:pw")},
        "reg.example:5000/team": {"auth": b64("team:pw")},
        "reg.example:5000/team/app/": {"auth": b64("app:pw")},
        "https://reg.example:5000/team/legacy": {"auth": b64("legacy:pw")},  # a URL: its host only
        "index.docker.io/library": {"auth": b64("hub-library:pw")}}}))
    store = CredentialStore(auth, tmp_path / "none.json")
    user = lambda registry, repo=None: (store.get(registry, repo) or Credentials("-", "")).username  # noqa: E731
    assert user("reg.example:5000", "team/app") == "app"
    assert user("reg.example:5000", "team/app/nested") == "app"
    assert user("reg.example:5000", "team/application") == "team"  # whole path components only
    assert user("reg.example:5000", "team/legacy") == "team"
    assert user("reg.example:5000", "teams/app") == "host"
    assert user("reg.example:5000") == "host"
    assert user("docker.io", "library/busybox") == "hub-library"
    assert user("docker.io", "someone/busybox") == "-"
    store.save("reg.example:5000", Credentials("host2", "pw"))  # a registry login keeps the others
    assert user("reg.example:5000", "team/app") == "app" and user("reg.example:5000", "x/y") == "host2"
    assert store.registries() == ["docker.io/library", "reg.example:5000", "reg.example:5000/team",
                                  "reg.example:5000/team/app"]
    assert store.remove("reg.example:5000/team/app")
    assert user("reg.example:5000", "team/app") == "team"


def test_a_credential_helper_that_hangs_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.registry.credentials as credentials

    bin_dir = tmp_path / "bin"
    _helper(bin_dir, "stuck", "exec sleep 30\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(credentials, "HELPER_TIMEOUT", 1)  # the real 60 s would slow the suite down
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "stuck"}))
    with pytest.raises(AuthError, match="credential helper docker-credential-stuck did not answer for "
                                        r"reg\.example within 1 s"):
        CredentialStore(tmp_path / "auth.json", config).get("reg.example")


@pytest.mark.parametrize("relative", [".", ""])
def test_a_helper_in_the_current_directory_is_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        relative: str) -> None:
    """PATH with "." or an empty entry (``/usr/bin:``) names the current directory: a helper
    planted in a directory someone runs stockade from must not run."""
    planted = tmp_path / "checkout"
    _helper(planted, "desktop", 'touch ran; echo \'{"Username": "u", "Secret": "s"}\'\n')
    monkeypatch.chdir(planted)
    monkeypatch.setenv("PATH", f"{relative}:/usr/bin:/bin" if relative else "/usr/bin:/bin:")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "desktop"}))
    with pytest.raises(AuthError, match="docker-credential-desktop .* is not installed"):
        CredentialStore(tmp_path / "auth.json", config).get("reg.example")
    assert not (planted / "ran").exists()
