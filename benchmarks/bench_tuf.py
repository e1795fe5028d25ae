"""TUF trust for tags: ``stockade trust verify --tuf`` warm and cold, against python-tuf's ngclient.

Set-up (real parts, loopback only): Debian's registry with busybox pushed by skopeo, a TUF
repository made by ``stockade trust init`` and ``trust sign``, its ``metadata/`` served by
python's http.server in this process.

Cases, interleaved in the same rounds:

* ``stockade-verify-warm``: the CLI with its TUF cache in place, so ngclient fetches only the next
  root probe (404) and ``timestamp.json``, plus the registry's manifest for the tag;
* ``stockade-verify-cold``: the same with an empty cache (every metadata file fetched and verified);
* ``ngclient-warm`` / ``ngclient-cold``: the peer, a fresh Python process driving python-tuf's
  ``Updater(bootstrap=…).refresh()`` and ``get_targetinfo()`` directly, same interpreter, same
  repository, same cache states (no registry request: that is the price of checking the tag);
* ``stockade-version``: the command line's start-up alone, to read the CLI rows against;
* ``resolve-in-process`` / ``ngclient-refresh-in-process``: our client function against a bare
  ``Updater.refresh()`` + ``get_targetinfo()`` in this process, both warm: the wrapper's own cost
  (locking, cache choice, error translation) without process start-up.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.harness import PYTHON, REPO, Benchmark, run_timed

PASSWORD = "benchmark-password"
# harness.PYTHON is the realpath of the interpreter; for a venv that is the base interpreter, which
# does not see the venv's packages (tuf, cryptography). The venv's bin/python is a symlink, not a
# shim, so it costs nothing extra to call it by that path.
INTERPRETER = sys.executable if sys.prefix != sys.base_prefix else PYTHON

PEER = """
import sys
from tuf.ngclient import Updater
metadata_dir, url, root, name = sys.argv[1:5]
updater = Updater(metadata_dir, url, bootstrap=open(root, "rb").read())
updater.refresh()
if updater.get_targetinfo(name) is None:
    sys.exit("target not found")
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class name
        pass


def main(rounds: int = 9) -> dict[str, object]:
    from tests.support.images import make_busybox_layout, skopeo_push
    from tests.support.registry import start_registry
    from trust.tuf import client, repository

    work = Path(tempfile.mkdtemp(prefix="bench-tuf-"))
    registry = start_registry(work / "registry")
    server = None
    try:
        layout = make_busybox_layout(work / "image")
        image = f"{registry.host}/bench/app:1.0"
        skopeo_push(layout, "busybox", image)
        repo = work / "tuf"
        env = {**os.environ, "STOCKADE_PASSWORD": PASSWORD, "STOCKADE_CONFIG": str(work / "empty.toml"),
               "PYTHONPATH": str(REPO)}
        (work / "empty.toml").write_text("")
        run_timed(stockade_argv("trust", "init", "--repo", str(repo)), env=env)
        run_timed(stockade_argv("trust", "sign", image, "--repo", str(repo)), env=env)
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(repo / "metadata")))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        root = str(repo / "metadata" / "1.root.json")
        peer_script = work / "peer.py"
        peer_script.write_text(PEER)

        def verify(store: Path) -> list[str]:
            return stockade_argv("--root", str(store), "trust", "verify", image, "--tuf", url,
                                 "--tuf-root", root)

        def peer(cache: Path) -> list[str]:
            cache.mkdir(parents=True, exist_ok=True)
            return [INTERPRETER, str(peer_script), str(cache), url, root, image]

        warm_store, cold_store = work / "store-warm", work / "store-cold"
        peer_warm, peer_cold = work / "peer-warm", work / "peer-cold"
        run_timed(verify(warm_store), env=env)  # fill the warm caches once
        run_timed(peer(peer_warm), env=env)

        in_process_cache = work / "in-process"
        client.resolve(image, url, root, in_process_cache)
        updater_dir = work / "updater-in-process"
        updater_dir.mkdir()
        root_bytes = Path(root).read_bytes()

        def bare_refresh() -> float:
            from tuf.ngclient import Updater

            start = time.perf_counter()
            updater = Updater(str(updater_dir), url, bootstrap=root_bytes)
            updater.refresh()
            if updater.get_targetinfo(image) is None:
                raise RuntimeError("target not found")
            return time.perf_counter() - start

        def our_resolve() -> float:
            start = time.perf_counter()
            client.resolve(image, url, root, in_process_cache)
            return time.perf_counter() - start

        def reset(case: str) -> None:
            if case == "stockade-verify-cold":
                shutil.rmtree(cold_store, ignore_errors=True)
            elif case == "ngclient-cold":
                shutil.rmtree(peer_cold, ignore_errors=True)

        bench = Benchmark("tuf", "verify a tag through TUF (warm: cached metadata; cold: empty cache)")
        bench.case("stockade-verify-warm", lambda: run_timed(verify(warm_store), env=env))
        bench.case("ngclient-warm", lambda: run_timed(peer(peer_warm), env=env))
        bench.case("stockade-verify-cold", lambda: run_timed(verify(cold_store), env=env))
        bench.case("ngclient-cold", lambda: run_timed(peer(peer_cold), env=env))
        # The command line's own start-up, for reading the CLI rows: verify minus this is the
        # registry round trip, the tuf import and the refresh.
        bench.case("stockade-version", lambda: run_timed(stockade_argv("version"), env=env))
        bench.case("resolve-in-process", our_resolve)
        bench.case("ngclient-refresh-in-process", bare_refresh)
        bench.notes.update({"python-tuf": _version("tuf"), "registry": "docker-registry on 127.0.0.1",
                            "tuf server": "python http.server on 127.0.0.1, same process"})
        stats = bench.run(rounds=rounds, warmup=1, before_each=reset)
        return bench.report(stats, [("stockade-verify-warm", "ngclient-warm"),
                                    ("stockade-verify-cold", "ngclient-cold"),
                                    ("stockade-verify-warm", "stockade-verify-cold"),
                                    ("resolve-in-process", "ngclient-refresh-in-process")])
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


def stockade_argv(*args: str) -> list[str]:
    return [INTERPRETER, "-m", "stockade", *args]


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
