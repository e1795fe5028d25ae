"""The repository on disk: layout, permissions, atomic publication, keys, and refusing bad states."""

from __future__ import annotations

import json
import stat
import subprocess  # nosec B404 # openssl with an argument list
import threading
from pathlib import Path

import pytest

from trust.errors import KeyFileError, WrongPasswordError
from trust.tuf import repository
from trust.tuf.errors import TufKeyError, TufRepositoryError
from trust.tuf.store import RepositoryFiles

from .conftest import PASSWORD, password

DIGEST = "sha256:" + "cd" * 32
NAME = "127.0.0.1:5000/ns/app:1.0"


def snapshot_files(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes()
            for p in sorted(repo.rglob("*")) if p.is_file() and p.name != "lock"}


def test_init_layout_and_permissions(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    change = repository.init(repo, password)
    assert change.versions == {"root": 1, "targets": 1, "targets/releases": 1, "snapshot": 1,
                               "timestamp": 1}
    meta = repo / "metadata"
    for name in ("1.root.json", "root.json", "1.targets.json", "1.targets/releases.json",
                 "1.targets%2Freleases.json", "1.snapshot.json", "timestamp.json"):
        assert (meta / name).is_file(), name
    assert (meta / "root.json").read_bytes() == (meta / "1.root.json").read_bytes()
    keys = list((repo / "keys").iterdir())
    assert len(keys) == 5
    assert stat.S_IMODE((repo / "keys").stat().st_mode) == 0o700
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    # Interoperable at rest: openssl opens a key with the password, and not without it.
    ok = subprocess.run(["openssl", "pkey", "-in", str(keys[0]), "-passin", f"pass:{PASSWORD}",
                         "-noout"], capture_output=True)  # nosec B603 B607
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(["openssl", "pkey", "-in", str(keys[0]), "-passin", "pass:wrong", "-noout"],
                         capture_output=True)  # nosec B603 B607
    assert bad.returncode != 0


def test_init_refuses_an_existing_repository(tmp_path: Path) -> None:
    repository.init(tmp_path / "repo", password)
    before = snapshot_files(tmp_path / "repo")
    with pytest.raises(TufRepositoryError, match="already holds a TUF repository"):
        repository.init(tmp_path / "repo", password)
    assert snapshot_files(tmp_path / "repo") == before


def test_concurrent_inits_make_one_repository(tmp_path: Path) -> None:
    results: list[object] = []

    def init() -> None:
        try:
            results.append(repository.init(tmp_path / "repo", password))
        except TufRepositoryError as exc:
            results.append(exc)

    threads = [threading.Thread(target=init) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, repository.Change) for r in results) == 1
    assert sum(isinstance(r, TufRepositoryError) for r in results) == 3
    assert len(list((tmp_path / "repo" / "keys").iterdir())) == 5
    assert all(r["signatures"] == "valid" for r in repository.describe(tmp_path / "repo")["roles"])


def test_a_failed_init_leaves_no_keys_behind(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    # Publishing fails after all five keys were made: the directory the first delegated-role file
    # goes into is taken by a file.
    (repo / "metadata").mkdir(parents=True)
    (repo / "metadata" / "1.targets").write_text("in the way")
    with pytest.raises(OSError):
        repository.init(repo, password)
    assert list((repo / "keys").iterdir()) == []
    (repo / "metadata" / "1.targets").unlink()
    assert repository.init(repo, password).versions["root"] == 1


def test_sign_then_load_round_trip(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repository.init(repo, password)
    change = repository.sign(repo, NAME, DIGEST, 1234, password)
    assert change.changed == ("targets/releases", "snapshot", "timestamp")
    assert change.versions["targets/releases"] == 2
    info = repository.describe(repo)
    assert info["targets"] == [{"name": NAME, "digest": DIGEST, "length": 1234,
                                "role": "targets/releases"}]
    assert all(r["signatures"] == "valid" and not r["expired"] for r in info["roles"])
    # Re-signing the same tag with a new digest replaces the target.
    repository.sign(repo, NAME, "sha256:" + "ef" * 32, 99, password)
    assert repository.describe(repo)["targets"][0]["digest"] == "sha256:" + "ef" * 32


@pytest.mark.parametrize("digest,length,message", [
    ("sha256:abc", 10, "sha256 needs 64 hex digits"),
    ("md5:" + "0" * 32, 10, "unsupported"),
    ("sha256:" + "AB" * 32, 10, "lower-case hex"),
    (DIGEST, 0, "invalid manifest length"),
    (DIGEST, True, "invalid manifest length"),
])
def test_sign_rejects_bad_digests_and_lengths(tmp_path: Path, digest: str, length: int,
                                              message: str) -> None:
    repository.init(tmp_path / "repo", password)
    before = snapshot_files(tmp_path / "repo")
    with pytest.raises(TufRepositoryError, match=message):
        repository.sign(tmp_path / "repo", NAME, digest, length, password)
    assert snapshot_files(tmp_path / "repo") == before


def test_wrong_password_changes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repository.init(repo, password)
    before = snapshot_files(repo)
    with pytest.raises(WrongPasswordError, match="wrong password"):
        repository.sign(repo, NAME, DIGEST, 10, lambda: b"not the password")
    with pytest.raises(WrongPasswordError):
        repository.rotate(repo, "timestamp", lambda: b"not the password")
    assert snapshot_files(repo) == before


def test_truncated_key_file_is_named(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repository.init(repo, password)
    timestamp_keyid = json.loads((repo / "metadata/1.root.json").read_bytes())[
        "signed"]["roles"]["timestamp"]["keyids"][0]
    key = repo / "keys" / f"{timestamp_keyid}.key"
    key.write_bytes(key.read_bytes()[:150])
    with pytest.raises(KeyFileError, match=str(key)):
        repository.resign(repo, ["timestamp"], password)


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repository.init(repo, password)
    for key in (repo / "keys").iterdir():
        key.unlink()
    with pytest.raises(TufKeyError, match="does not hold"):
        repository.resign(repo, ["timestamp"], password)


def test_rotation_replaces_the_key_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repository.init(repo, password)
    before = {p.name for p in (repo / "keys").iterdir()}
    change = repository.rotate(repo, "root", password)
    after = {p.name for p in (repo / "keys").iterdir()}
    assert len(before - after) == 1 and len(after - before) == 1
    assert change.versions["root"] == 2
    assert (repo / "metadata/root.json").read_bytes() == (repo / "metadata/2.root.json").read_bytes()
    assert all(r["signatures"] == "valid" for r in repository.describe(repo)["roles"])


def test_describe_reports_a_tampered_signature(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repository.init(repo, password)
    snapshot = repo / "metadata/1.snapshot.json"
    doc = json.loads(snapshot.read_bytes())
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"
    snapshot.write_text(json.dumps(doc))
    roles = {r["role"]: r for r in repository.describe(repo)["roles"]}
    assert roles["snapshot"]["signatures"].startswith("INVALID")
    assert roles["timestamp"]["signatures"] == "valid"


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(TufRepositoryError, match="not a TUF repository"):
        repository.describe(tmp_path)
    with pytest.raises(TufRepositoryError, match="does not exist"):
        repository.sign(tmp_path / "nowhere", NAME, DIGEST, 1, password)


def test_store_refuses_a_snapshot_naming_foreign_roles(tmp_path: Path) -> None:
    """Names read from disk never become paths unchecked."""
    repo = tmp_path / "repo"
    repository.init(repo, password)
    snapshot = repo / "metadata/1.snapshot.json"
    doc = json.loads(snapshot.read_bytes())
    doc["signed"]["meta"]["../../../etc/passwd.json"] = {"version": 1}
    snapshot.write_text(json.dumps(doc))
    with pytest.raises(TufRepositoryError, match="etc/passwd"):
        RepositoryFiles(repo).load()


def test_a_malformed_key_id_never_becomes_a_path(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repository.init(repo, password)
    root_file = repo / "metadata/1.root.json"
    doc = json.loads(root_file.read_bytes())
    old = doc["signed"]["roles"]["timestamp"]["keyids"][0]
    doc["signed"]["roles"]["timestamp"]["keyids"] = ["../../escape"]
    doc["signed"]["keys"]["../../escape"] = doc["signed"]["keys"].pop(old)
    root_file.write_text(json.dumps(doc))
    with pytest.raises(TufKeyError, match="malformed key id"):
        repository.resign(repo, ["timestamp"], password)


def test_concurrent_signers_each_get_their_own_version(tmp_path: Path) -> None:
    """The writer lock: eight parallel `trust sign` runs make eight releases versions, none lost."""
    repo = tmp_path / "repo"
    repository.init(repo, password)
    errors: list[BaseException] = []

    def sign(i: int) -> None:
        try:
            repository.sign(repo, f"127.0.0.1:5000/ns/app:{i}", DIGEST, 10 + i, password)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    info = repository.describe(repo)
    assert len(info["targets"]) == 8
    versions = {r["role"]: r["version"] for r in info["roles"]}
    assert versions["targets/releases"] == 9 and versions["timestamp"] == 9
