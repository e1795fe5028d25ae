"""``stockade trust …`` as a user runs it: output, JSON, exit codes, and nothing written on failure."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.cli import stockade
from trust.tuf import repository

from .conftest import PASSWORD, TufRepo, password

ENV = {"STOCKADE_PASSWORD": PASSWORD}
NAME = "127.0.0.1:5000/ns/app:1.0"
DIGEST = "sha256:" + "56" * 32


def run_json(*args: str | Path, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    r = stockade(*args, "-o", "json", env=env or ENV)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_init_prints_what_to_serve_and_pin(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    r = stockade("trust", "init", "--repo", repo, env=ENV)
    assert r.returncode == 0, r.stderr
    root = repo / "metadata" / "1.root.json"
    assert f"serve:   {repo / 'metadata'}" in r.stdout
    assert repository.root_sha256(root) in r.stdout
    again = stockade("trust", "init", "--repo", repo, "-o", "json", env=ENV)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.startswith("stockade: error: ") and "already holds" in again.stderr


def test_init_json(tmp_path: Path) -> None:
    data = run_json("trust", "init", "--repo", tmp_path / "repo")
    assert data["versions"]["timestamp"] == 1
    assert data["root_sha256"] == repository.root_sha256(data["root"])
    assert "timestamp.json" in data["written"]


def test_no_password_without_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKADE_PASSWORD", raising=False)
    r = stockade("trust", "init", "--repo", tmp_path / "repo")  # stdin is not a terminal
    assert r.returncode == 2 and "set STOCKADE_PASSWORD" in r.stderr
    r = stockade("trust", "init", "--repo", tmp_path / "repo", env={"STOCKADE_PASSWORD": ""})
    assert r.returncode == 1 and "empty password" in r.stderr
    assert not (tmp_path / "repo" / "metadata" / "1.root.json").exists()
    assert run_json("trust", "init", "--repo", tmp_path / "repo")["versions"]["root"] == 1


def test_wrong_password_is_one_line_and_changes_nothing(tuf_repo: TufRepo) -> None:
    before = tuf_repo.metadata("timestamp.json").read_bytes()
    r = stockade("trust", "resign", "--repo", tuf_repo.path, env={"STOCKADE_PASSWORD": "nope"})
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "wrong password" in r.stderr
    assert tuf_repo.metadata("timestamp.json").read_bytes() == before


def test_resign_defaults_and_expiry(tuf_repo: TufRepo) -> None:
    data = run_json("trust", "resign", "--repo", tuf_repo.path)
    assert data["changed"] == ["snapshot", "timestamp"]
    before = datetime.now(timezone.utc)
    data = run_json("trust", "resign", "--repo", tuf_repo.path, "--role", "timestamp",
                    "--expires", "2h")
    assert data["changed"] == ["timestamp"]
    timestamp = json.loads(tuf_repo.metadata("timestamp.json").read_bytes())["signed"]
    expires = datetime.fromisoformat(timestamp["expires"].replace("Z", "+00:00"))
    assert timedelta(hours=1, minutes=59) <= expires - before <= timedelta(hours=2, minutes=1)
    data = run_json("trust", "resign", "--repo", tuf_repo.path, "--role", "targets/releases",
                    "--role", "root", "--expires", "2099-01-01T00:00:00Z")
    assert data["changed"] == ["targets/releases", "snapshot", "root", "timestamp"]


@pytest.mark.parametrize("expires", ["2000-01-01", "soon", "0d", "-5d"])
def test_resign_refuses_bad_expiry(tuf_repo: TufRepo, expires: str) -> None:
    r = stockade("trust", "resign", "--repo", tuf_repo.path, f"--expires={expires}", env=ENV)
    assert r.returncode == 2 and "--expires" in r.stderr


def test_key_rotate_and_inspect(tuf_repo: TufRepo) -> None:
    repository.sign(tuf_repo.path, NAME, DIGEST, 321, password)
    data = run_json("trust", "key", "rotate", "root", "--repo", tuf_repo.path)
    assert data["versions"]["root"] == 2 and data["role"] == "root"
    info = run_json("trust", "inspect", "--repo", tuf_repo.path)
    assert {r["role"]: r["version"] for r in info["roles"]}["root"] == 2
    assert all(r["signatures"] == "valid" for r in info["roles"])
    assert info["targets"] == [{"name": NAME, "digest": DIGEST, "length": 321,
                                "role": "targets/releases"}]
    table = stockade("trust", "inspect", "--repo", tuf_repo.path, "127.0.0.1:5000/ns/app")
    assert table.returncode == 0
    assert "targets/releases" in table.stdout and NAME in table.stdout and "321B" in table.stdout


def test_inspect_filters_by_image_and_tag(tuf_repo: TufRepo) -> None:
    for name in (NAME, "127.0.0.1:5000/ns/app:2.0", "127.0.0.1:5000/ns/other:1.0"):
        repository.sign(tuf_repo.path, name, DIGEST, 1, password)
    image = run_json("trust", "inspect", "--repo", tuf_repo.path, "127.0.0.1:5000/ns/app")
    assert [t["name"] for t in image["targets"]] == [NAME, "127.0.0.1:5000/ns/app:2.0"]
    tag = run_json("trust", "inspect", "--repo", tuf_repo.path, "127.0.0.1:5000/ns/app:2.0")
    assert [t["name"] for t in tag["targets"]] == ["127.0.0.1:5000/ns/app:2.0"]
    missing = stockade("trust", "inspect", "--repo", tuf_repo.path, "127.0.0.1:5000/ns/app:3.0")
    assert missing.returncode == 1 and "127.0.0.1:5000/ns/app:3.0 is not signed" in missing.stderr


def test_inspect_remote_is_verified_from_the_pinned_root(tuf_repo: TufRepo) -> None:
    repository.sign(tuf_repo.path, NAME, DIGEST, 321, password)
    data = run_json("trust", "inspect", "--tuf", tuf_repo.url, "--tuf-root", tuf_repo.root)
    assert data["targets"][0]["name"] == NAME
    assert [r["role"] for r in data["roles"]][-1] == "targets/releases"
    r = stockade("trust", "inspect", "--tuf", tuf_repo.url)
    assert r.returncode == 2 and "--tuf-root" in r.stderr


def test_revoke(tuf_repo: TufRepo) -> None:
    repository.sign(tuf_repo.path, NAME, DIGEST, 321, password)
    data = run_json("trust", "revoke", NAME, "--repo", tuf_repo.path)
    assert data["revoked"] is True and data["target"] == NAME
    r = stockade("trust", "revoke", NAME, "--repo", tuf_repo.path, env=ENV)
    assert r.returncode == 1 and "nothing to revoke" in r.stderr


@pytest.mark.parametrize("args,code,message", [
    (("trust",), 2, "COMMAND"),
    (("trust", "key"), 2, "rotate"),
    (("trust", "key", "rotate", "admin", "--repo", "x"), 2, "invalid choice"),
    (("trust", "revoke", "127.0.0.1:5000/ns/app@sha256:" + "0" * 64, "--repo", "x"), 2, "per tag"),
    (("trust", "revoke", "Not A Reference", "--repo", "x"), 1, "invalid reference"),
    (("trust", "inspect", "--repo", "/nonexistent/repo"), 1, "not a TUF repository"),
    (("verify", "127.0.0.1:1/a:b", "--tuf", "http://127.0.0.1:1/"), 2, "go together"),
    (("trust", "verify", "127.0.0.1:1/a:b", "--tuf", "http://127.0.0.1:1/"), 2, "--tuf-root"),
])
def test_usage_errors(args: tuple[str, ...], code: int, message: str) -> None:
    r = stockade(*args, env=ENV)
    assert r.returncode == code, r.stderr
    assert message in r.stderr
