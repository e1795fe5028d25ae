"""Docker's verbs on existing containers: stop, kill, start, restart, rm, prune, and reconciliation.

The monitor of a running container is the only process that records its exit; commands act on the
container (signals to its init) and then wait for the monitor to finish (``pidfd``), so the record
they return is the one the monitor wrote. ``reconcile`` repairs a record whose monitor died without
writing (``kill -9``, a crash, a reboot): the container died with it (PR_SET_PDEATHSIG), so the record
becomes ``exited`` with the reason in ``State.Error``, and its leftovers (cgroup) are removed.
"""

from __future__ import annotations

import os
import select
import signal
import time
from typing import TYPE_CHECKING, Any

from engine.config import Paths
from engine.containers import state
from engine.containers.create import remove_files
from engine.containers.store import ContainerError, ContainerStore
from engine.errors import StockadeError

if TYPE_CHECKING:
    from engine.runtime.cgroups import Cgroup

KILLED_EXIT = 128 + signal.SIGKILL


def signal_number(name: str | int) -> int:
    """``TERM``, ``SIGTERM``, ``15`` -> 15."""
    text = str(name).strip().upper()
    if text.isascii() and text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
    else:
        try:
            return int(signal.Signals[text if text.startswith("SIG") else f"SIG{text}"])
        except KeyError:
            pass
    raise ContainerError(f"invalid signal: {name}")


def recorded_cgroup(doc: dict[str, Any]) -> Cgroup | None:
    """The cgroup a record names, or None (a container without limits has none, and then the cgroup
    code is not even imported)."""
    saved = doc["Stockade"].get("Cgroup")
    if not saved:
        return None
    from engine.runtime import cgroups

    return cgroups.from_state(saved)


def reconcile(store: ContainerStore, doc: dict[str, Any]) -> dict[str, Any]:
    """Make a record whose monitor is gone say so; return the (possibly updated) record."""
    if not doc["State"].get("Running") or state.is_running(doc):
        return doc

    def dead(d: dict[str, Any]) -> None:
        if not d["State"].get("Running") or state.is_running(d):
            return
        if state.init_alive(d):
            try:
                os.kill(int(d["State"]["Pid"]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        cg = recorded_cgroup(d)
        oom = False
        if cg is not None:
            oom = cg.oom_killed()
            cg.destroy()
        state.mark_exited(d, KILLED_EXIT, oom=oom,
                          error="the container's monitor exited unexpectedly; the container was killed")
        d["Stockade"]["Cgroup"] = None
    return store.update(doc["Id"], dead)


def current(store: ContainerStore, ref: str) -> dict[str, Any]:
    """The reconciled record of the container ``ref`` names."""
    return reconcile(store, store.load(store.find(ref)))


def wait_monitor(doc: dict[str, Any], timeout: float | None) -> bool:
    """Wait until the container's monitor has exited (and so recorded the exit); False on timeout."""
    monitor = doc["Stockade"].get("Monitor")
    if not monitor or not state.alive(monitor["Pid"], monitor["Start"]):
        return True
    try:
        fd = os.pidfd_open(monitor["Pid"])
    except ProcessLookupError:
        return True
    try:
        if not state.alive(monitor["Pid"], monitor["Start"]):
            return True
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def kill(store: ContainerStore, ref: str, sig: str | int = "SIGKILL") -> dict[str, Any]:
    number = signal_number(sig)
    doc = current(store, ref)
    if not state.is_running(doc) or not state.init_alive(doc):
        raise ContainerError(f"container {doc['Name'].lstrip('/')} is not running")
    os.kill(int(doc["State"]["Pid"]), number)
    return doc


def stop(store: ContainerStore, ref: str, timeout: float | None = None) -> dict[str, Any]:
    """The stop signal (image STOPSIGNAL, default SIGTERM), then SIGKILL after ``timeout`` seconds."""
    doc = current(store, ref)
    if not state.is_running(doc):
        return doc
    if timeout is None:
        configured = doc["Config"].get("StopTimeout")
        timeout = 10 if configured is None else configured
    pid = int(doc["State"]["Pid"])
    try:
        if state.init_alive(doc):
            os.kill(pid, signal_number(doc["Config"].get("StopSignal") or "SIGTERM"))
        if not wait_monitor(doc, max(0.0, timeout)):
            if state.init_alive(doc):
                os.kill(pid, signal.SIGKILL)
            wait_monitor(doc, None)
    except ProcessLookupError:
        wait_monitor(doc, None)
    return reconcile(store, store.load(doc["Id"]))


def start(paths: Paths, store: ContainerStore, ref: str) -> dict[str, Any]:
    """Start a created or exited container, detached (``docker start`` without ``-a``)."""
    from engine.containers.monitor import start_detached

    doc = current(store, ref)
    if state.is_running(doc):
        return doc
    cid = doc["Id"]
    if doc["State"]["Status"] != "created":
        store.update(cid, lambda d: d.__setitem__("RestartCount", int(d.get("RestartCount", 0)) + 1))
    start_detached(paths, cid)
    return store.load(cid)


def restart(paths: Paths, store: ContainerStore, ref: str, timeout: float | None = None) -> dict[str, Any]:
    stop(store, ref, timeout)
    return start(paths, store, ref)


def remove_stopped(store: ContainerStore, doc: dict[str, Any], *, volumes: bool) -> None:
    """Delete a container that is not running: its files, name, cgroup and (with ``volumes``) its
    anonymous volumes. Named volumes and bind-mounted directories are never touched."""
    cid = doc["Id"]
    cg = recorded_cgroup(doc)
    if cg is not None:
        cg.destroy()
    remove_files(store, cid)
    store.release_name(doc["Name"].lstrip("/"), cid)  # after: a stale name is reclaimable, see store
    if volumes and doc["Stockade"].get("AnonymousVolumes"):
        from engine.volumes import Volumes

        vols = Volumes(store.paths.root, store.paths)
        in_use = volumes_in_use(store)
        for name in doc["Stockade"].get("AnonymousVolumes") or []:
            try:
                vols.remove(name, in_use=in_use)
            except StockadeError:
                continue  # shared through --volumes-from, or already gone


def remove(store: ContainerStore, ref: str, *, force: bool = False, volumes: bool = False) -> str:
    doc = current(store, ref)
    if state.is_running(doc):
        if not force:
            raise ContainerError(f"cannot remove running container {doc['Name'].lstrip('/')}",
                                 hint="stop it first or use rm -f")
        if state.init_alive(doc):
            try:
                os.kill(int(doc["State"]["Pid"]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_monitor(doc, None)
        doc = reconcile(store, store.load(doc["Id"]))
        if doc["HostConfig"].get("AutoRemove"):
            _wait_gone(store, doc["Id"])
    if store.record_path(doc["Id"]).exists():
        remove_stopped(store, doc, volumes=volumes)
    return doc["Id"]


def _wait_gone(store: ContainerStore, cid: str) -> None:
    """A ``--rm`` container's monitor removes it itself; give it a moment to finish."""
    for _ in range(100):
        if not store.record_path(cid).exists():
            return
        time.sleep(0.02)


def prune(store: ContainerStore) -> list[str]:
    removed = []
    for cid in store.ids():
        try:
            doc = reconcile(store, store.load(cid))
            if not state.is_running(doc):
                remove_stopped(store, doc, volumes=False)
                removed.append(cid)
        except StockadeError:
            continue
    return removed


def all_records(store: ContainerStore) -> list[dict[str, Any]]:
    """Every container's reconciled record, newest first."""
    out = []
    for cid in store.ids():
        try:
            out.append(reconcile(store, store.load(cid)))
        except StockadeError:
            continue
    return sorted(out, key=lambda d: d.get("Created", ""), reverse=True)


def volumes_in_use(store: ContainerStore) -> set[str]:
    names = set()
    for cid in store.ids():
        try:
            doc = store.load(cid)
        except StockadeError:
            continue
        names.update(m["Name"] for m in doc.get("Mounts") or [] if m.get("Type") == "volume")
    return names


def images_in_use(store: ContainerStore) -> set[str]:
    """Image ids some container was created from (the image store refuses to remove those)."""
    ids = set()
    for cid in store.ids():
        try:
            ids.add(store.load(cid).get("Image") or "")
        except StockadeError:
            continue
    ids.discard("")
    return ids
