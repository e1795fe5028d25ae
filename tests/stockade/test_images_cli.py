"""The image verbs through the real command line, against real registries, checked with skopeo.

Interop both ways: what skopeo pushes, ``stockade pull`` fetches with the digest skopeo reported and
``images -o json`` lists with it; what ``stockade push`` writes, skopeo copies and inspects.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import stat
import subprocess  # nosec B404 # skopeo and the CLI with argument lists
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.engine.registry.fixtures import Pushed
from tests.support.cli import REPO, stockade
from tests.support.images import populate_busybox_rootfs, skopeo_push
from tests.support.registry import PASSWORD, USER, Registry

from tests.engine.registry.fixtures import _auth_file, pushed_busybox  # noqa: F401 - fixtures


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout  # nosec


def ok(result: subprocess.CompletedProcess) -> Any:  # type: ignore[type-arg]
    """stdout of a successful command (bytes when run with ``text=False``)."""
    assert result.returncode == 0, result.stderr
    return result.stdout


def failed(result: subprocess.CompletedProcess, message: str) -> str:  # type: ignore[type-arg]
    assert result.returncode == 1, result.stdout
    lines = str(result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stockade: error: ") and message in lines[0], result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root filesystem as a tarball, made without Stockade."""
    work = tmp_path_factory.mktemp("rootfs")
    populate_busybox_rootfs(work / "rootfs")
    tarball = work / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(work / "rootfs", arcname=".")
    return tarball


def test_skopeo_push_then_stockade_pull_and_list(store_root: Path, pushed_busybox: Pushed) -> None:
    out = ok(stockade("pull", pushed_busybox.ref, root=store_root))
    assert out.splitlines() == [f"Digest: {pushed_busybox.digest}"]  # quiet in a pipe, digest last
    [row] = json.loads(ok(stockade("images", "-o", "json", root=store_root)))
    repository, _, tag = pushed_busybox.ref.rpartition(":")
    assert (row["repository"], row["tag"], row["digest"]) == (repository, tag, pushed_busybox.digest)
    assert row["id"].startswith("sha256:") and row["size"] > 1_000_000 and row["created"]
    table = ok(stockade("images", root=store_root)).splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].startswith(f"{repository}   latest   {row['id'][7:19]}")
    assert ok(stockade("image", "ls", "-q", root=store_root)).split() == [row["id"][7:19]]
    pulled = json.loads(ok(stockade("pull", "-o", "json", pushed_busybox.ref, root=store_root)))
    assert pulled["digest"] == pushed_busybox.digest and pulled["downloaded"] == 0


def test_stockade_import_push_then_skopeo_pull(store_root: Path, registry: Registry, rootfs_tar: Path,
                                               tmp_path: Path) -> None:
    name = f"{registry.host}/made/by-stockade:v1"
    image_id = ok(stockade("import", "--change", "USER 1000", "--change", 'CMD ["/bin/sh"]',
                           "-c", "WORKDIR /home/app", str(rootfs_tar), name, root=store_root)).strip()
    out = ok(stockade("push", "--digestfile", str(tmp_path / "digest"), name, root=store_root))
    digest = (tmp_path / "digest").read_text()
    assert out.strip().startswith(f"v1: digest: {digest} size: ")
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{name}"))
    assert info["Digest"] == digest
    config = json.loads(skopeo("inspect", "--config", "--tls-verify=false", f"docker://{name}"))
    assert config["config"]["User"] == "1000" and config["config"]["WorkingDir"] == "/home/app"
    skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{name}", f"oci:{tmp_path / 'oci'}:v1")
    assert json.loads((tmp_path / "oci" / "index.json").read_text())["manifests"][0]["digest"] == digest
    [row] = json.loads(ok(stockade("images", "-o", "json", root=store_root)))
    assert (row["id"], row["digest"]) == (image_id, digest)
    # chunked upload to a repository it was never in (no mount source there)
    other = f"{registry.host}/chunked/copy:1"
    ok(stockade("push", "--chunk-size", "256k", name, other, root=store_root))
    assert json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{other}"))["Digest"] == digest


def test_pull_draws_progress_bars_on_a_terminal(store_root: Path, pushed_busybox: Pushed) -> None:
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "stockade", "--root", str(store_root), "pull",  # nosec
                           pushed_busybox.ref], stdout=subprocess.PIPE, stderr=slave, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    assert proc.returncode == 0
    text = drawn.decode(errors="replace")
    assert f"Pulling {pushed_busybox.ref}" in text
    assert "Downloading [" in text and "Pull complete" in text and "\x1b[" in text
    assert proc.stdout.decode().splitlines()[-1] == f"Digest: {pushed_busybox.digest}"


def test_tag_history_inspect_rmi(store_root: Path, pushed_busybox: Pushed) -> None:
    ok(stockade("pull", pushed_busybox.ref, root=store_root))
    ok(stockade("tag", pushed_busybox.ref, "mine/busybox:copy", root=store_root))
    [doc] = json.loads(ok(stockade("inspect", "mine/busybox:copy", root=store_root)))
    assert doc["Digest"] == pushed_busybox.digest
    assert doc["RepoTags"] == sorted([pushed_busybox.ref, "docker.io/mine/busybox:copy"])
    assert doc["Config"]["User"] == "1000:1000" and doc["Manifest"]["schemaVersion"] == 2
    assert json.loads(ok(stockade("image", "inspect", doc["Id"], root=store_root)))[0]["Id"] == doc["Id"]
    failed(stockade("inspect", "nothing:here", root=store_root), "no such object: nothing:here")
    failed(stockade("image", "inspect", "nothing:here", root=store_root), "no such image: nothing:here")
    history = json.loads(ok(stockade("history", "-o", "json", "mine/busybox:copy", root=store_root)))
    assert [h["created_by"] for h in history] == ["umoci config", "umoci repack"]
    assert "umoci repack" in ok(stockade("image", "history", doc["Id"][7:19], root=store_root))
    failed(stockade("rmi", doc["Id"], root=store_root), "is referenced in 2 repositories")
    out = ok(stockade("image", "rm", "mine/busybox:copy", root=store_root))
    assert out.strip() == "Untagged: docker.io/mine/busybox:copy"
    out = ok(stockade("rmi", pushed_busybox.ref, root=store_root))
    assert f"Deleted: {doc['Id']}" in out.splitlines()
    assert json.loads(ok(stockade("images", "-o", "json", root=store_root))) == []
    assert not list((store_root / "blobs" / "sha256").iterdir())


def test_rmi_refuses_an_image_a_container_uses(store_root: Path, rootfs_tar: Path) -> None:
    image_id = ok(stockade("import", str(rootfs_tar), "local/used:v1", root=store_root)).strip()
    container = ok(stockade("create", "local/used:v1", "/bin/true", root=store_root)).strip()
    # `container inspect` looks up containers only, through the one inspect implementation.
    [doc] = json.loads(ok(stockade("container", "inspect", container[:12], root=store_root)))
    assert (doc["Id"], doc["Image"]) == (container, image_id)
    failed(stockade("container", "inspect", container, "local/used:v1", root=store_root),
           "no such container: local/used:v1")
    failed(stockade("rmi", "local/used:v1", root=store_root), "is used by a container")
    assert ok(stockade("rmi", "-f", "local/used:v1", root=store_root)).strip() == \
        "Untagged: docker.io/local/used:v1"
    [row] = json.loads(ok(stockade("images", "-o", "json", root=store_root)))
    assert (row["id"], row["repository"]) == (image_id, None)  # dangling, still there for the container
    pruned = json.loads(ok(stockade("image", "prune", "-a", "-f", "-o", "json", root=store_root)))
    assert pruned["removed"] == []
    ok(stockade("rm", container, root=store_root))
    pruned = json.loads(ok(stockade("image", "prune", "-f", "-o", "json", root=store_root)))
    assert {"action": "deleted", "what": image_id} in pruned["removed"] and pruned["reclaimed"] > 0


def test_quiet_listing_of_an_empty_store_prints_nothing(store_root: Path) -> None:
    assert ok(stockade("images", "-q", root=store_root)) == ""


def test_save_and_load(store_root: Path, rootfs_tar: Path, tmp_path: Path) -> None:
    ok(stockade("import", str(rootfs_tar), "local/saved:v1", root=store_root))
    archive = tmp_path / "saved.tar"
    ok(stockade("save", "-o", str(archive), "local/saved:v1", root=store_root))
    assert json.loads(skopeo("inspect", f"oci-archive:{archive}:v1"))["Architecture"] == "amd64"
    piped = ok(stockade("save", "local/saved:v1", root=store_root, text=False))
    assert piped == archive.read_bytes()  # deterministic: same bytes to a file or a pipe
    other = tmp_path / "other"
    assert ok(stockade("load", "-i", str(archive), root=other)).strip() == "Loaded image: docker.io/local/saved:v1"
    assert ok(stockade("load", root=other, input=archive.read_bytes(), text=False))
    failed(stockade("load", "-i", str(rootfs_tar), root=other), "neither an OCI image layout")
    failed(stockade("save", "-o", str(tmp_path / "x.tar"), "local/absent", root=store_root), "not in the store")
    assert not (tmp_path / "x.tar").exists() and not list(tmp_path.glob(".x.tar*"))


def test_import_from_stdin_and_bad_change(store_root: Path, rootfs_tar: Path) -> None:
    image_id = ok(stockade("import", "-", "local/stdin", root=store_root, input=rootfs_tar.read_bytes(),
                           text=False)).strip()
    assert image_id.startswith(b"sha256:")
    failed(stockade("import", "--change", "RUN rm -rf /", str(rootfs_tar), root=store_root),
           "RUN is not allowed")


def test_login_logout_and_pull_with_basic_auth(store_root: Path, auth_registry: Registry, busybox_layout: Path,
                                               _auth_file: Path) -> None:
    ref = f"{auth_registry.host}/private/busybox:latest"
    digest = skopeo_push(busybox_layout, "busybox", ref, creds=(USER, PASSWORD))
    failed(stockade("pull", ref, root=store_root), f"run: stockade login {auth_registry.host}")
    failed(stockade("login", "-u", USER, "--password-stdin", auth_registry.host, input="wrong\n"),
           "authentication failed")
    # No terminal and no password given: say what to use instead of blocking (CI has no stdin).
    for argv, hint in ((("login", "-u", USER, auth_registry.host), "use --password-stdin"),
                       (("pull", "--creds", USER, ref), "give USER:PASSWORD")):
        usage = stockade(*argv, root=store_root)
        assert usage.returncode == 2 and usage.stderr.startswith(f"stockade: error: no password for {USER}: ")
        assert hint in usage.stderr
    assert not _auth_file.exists()
    out = ok(stockade("login", "-u", USER, "--password-stdin", auth_registry.host, input=PASSWORD + "\n"))
    assert out.strip() == "Login Succeeded!"
    assert stat.S_IMODE(_auth_file.stat().st_mode) == 0o600
    assert ok(stockade("pull", ref, root=store_root)).splitlines()[-1] == f"Digest: {digest}"
    assert ok(stockade("logout", auth_registry.host)).strip() == f"Removed login credentials for {auth_registry.host}"
    failed(stockade("logout", auth_registry.host), "not logged in")
    other = store_root.parent / "other"
    assert ok(stockade("pull", "--creds", f"{USER}:{PASSWORD}", ref, root=other)).splitlines()[-1] == \
        f"Digest: {digest}"
    docker = store_root.parent / "docker-config"  # Docker's own login works too
    docker.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {f"http://{auth_registry.host}": {"auth": auth}}}))
    out = ok(stockade("pull", ref, root=store_root.parent / "third", env={"DOCKER_CONFIG": str(docker)}))
    assert out.splitlines()[-1] == f"Digest: {digest}"


def test_tls_registry_with_certs_d_from_the_configuration(store_root: Path, tls_registry: Registry,
                                                          busybox_layout: Path, tmp_path: Path) -> None:
    assert tls_registry.ca_cert is not None
    ref = f"{tls_registry.host}/secure/busybox:latest"
    digest = skopeo_push(busybox_layout, "busybox", ref, tls_verify=False)
    failed(stockade("pull", ref, root=store_root), "certificate not trusted")
    certs = tmp_path / "certs.d" / tls_registry.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(tls_registry.ca_cert.read_bytes())
    config = tmp_path / "config.toml"
    config.write_text(f'[registries]\ncerts_dirs = ["{certs.parent}"]\n')
    assert ok(stockade("--config", str(config), "pull", ref, root=store_root)).splitlines()[-1] == \
        f"Digest: {digest}"
    assert ok(stockade("pull", "--tls-verify=false", ref, root=tmp_path / "r2")).splitlines()[-1] == \
        f"Digest: {digest}"


@pytest.mark.parametrize("ref,message", [
    ("Bad/Name", "must be lower-case"),
    ("busybox:", "the tag after ':' is empty"),
    ("busybox@sha256:123", "sha256 needs 64 hex digits"),
    ("https://x/y", "a reference has no scheme"),
])
def test_malformed_references(store_root: Path, ref: str, message: str) -> None:
    failed(stockade("pull", ref, root=store_root), message)
    assert list(store_root.iterdir()) == []  # nothing written


def test_image_verbs_build_only_their_own_parser(store_root: Path) -> None:
    """pull, push, images and rmi take the CLI's fast path: no other verb module is imported (all
    of them cost ~60 ms of argparse per call), and their own flags and help still work."""
    code = ("import json, sys\nfrom stockade.cli import main\n"
            f"rc = main(['--root', {str(store_root)!r}, 'images', '-q'])\n"
            "print(json.dumps([rc, sorted(m for m in sys.modules if m.startswith('stockade.commands'))]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,  # nosec
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    rc, modules = json.loads(proc.stdout.splitlines()[-1])
    assert (rc, modules) == (0, ["stockade.commands", "stockade.commands.images"]), proc.stderr
    assert "--platform" in ok(stockade("pull", "--help", root=store_root))
    failed(stockade("rmi", "nothing:here", root=store_root), "image docker.io/library/nothing:here is not in")
