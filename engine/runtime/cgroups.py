"""Resource limits and accounting through cgroups, v1 and v2, chosen as ``stockade info`` reports.

A container with limits gets the cgroup ``<parent>/<id>`` (``stockade/<id>`` by default, at the
hierarchy root as Docker's cgroupfs driver does) in the controllers its limits need; a container
without limits gets none (its processes are still tracked by its PID namespace). The monitor writes the init
process's pid there before the container unshares its cgroup namespace, so the container sees its own
cgroup as ``/`` and every process it starts is accounted to it.

* **v1** (this host: memory, pids, cpu mounted separately): ``memory.limit_in_bytes``, ``pids.max``,
  ``cpu.cfs_quota_us``/``cpu.cfs_period_us``; an OOM kill shows as ``oom_kill N`` in
  ``memory.oom_control``.
* **v2**: the controllers are enabled in each ancestor's ``cgroup.subtree_control``, then
  ``memory.max`` (and ``memory.swap.max``), ``pids.max``, ``cpu.max``; OOM kills are counted in
  ``memory.events``.

The choice between them is ``engine.host.CgroupInfo.manager``, the same value ``info`` prints.
"""

from __future__ import annotations

import abc
import errno
import os
import time

from engine.errors import StockadeError

# ``stockade-runtime delete`` and ``kill --all`` reopen a cgroup from its state in a short process:
# paths are plain strings (no ``pathlib``) and ``typing`` is not imported (~7 ms together).
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:  # annotations only: reopening a cgroup from state needs neither module
    from engine.host import CgroupInfo
    from engine.spec import Resources

V1_CONTROLLERS = ("memory", "pids", "cpu")
V2_CONTROLLERS = ("memory", "pids", "cpu")


class CgroupError(StockadeError):
    """A cgroup cannot be created or a limit cannot be written."""

    exit_code = 125


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}") from None


def _read_counter(path: str, key: str) -> int:
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isascii() and value.strip().isdigit():
            return int(value)
    return 0


def _rmdir(path: str) -> None:
    # Right after the last process exits the kernel may still report the cgroup busy for a moment.
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return
            time.sleep(0.01)


class Cgroup(abc.ABC):
    """One container's cgroup in one layout; ``dirs`` are the per-controller directories."""

    version = ""

    def __init__(self, dirs: list[str]) -> None:
        self.dirs = dirs

    def create(self) -> None:
        for d in self.dirs:
            try:
                os.makedirs(d, exist_ok=True)
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {d}: {exc.strerror}") from None

    def add(self, pid: int) -> None:
        for d in self.dirs:
            _write(os.path.join(d, "cgroup.procs"), str(pid))

    def destroy(self) -> None:
        for d in self.dirs:
            _rmdir(d)

    def procs(self) -> list[int]:
        """Processes in the container's cgroup (for ``top``)."""
        try:
            with open(os.path.join(self.dirs[0], "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except (OSError, IndexError):
            return []

    @abc.abstractmethod
    def apply(self, resources: Resources) -> None:
        """Write the limits."""

    @abc.abstractmethod
    def oom_killed(self) -> bool:
        """True once the kernel's OOM killer has killed a process of this cgroup."""

    @abc.abstractmethod
    def to_state(self) -> dict[str, object]:
        """What the container's state records, so a later command can reopen this cgroup."""


class CgroupV1(Cgroup):
    version = "v1"

    def __init__(self, by_controller: dict[str, str]) -> None:
        self.by_controller = by_controller
        # cpu and cpuacct may be one mount (cpu,cpuacct): one directory each is enough.
        super().__init__(list(dict.fromkeys(by_controller.values())))

    @classmethod
    def under(cls, mounts: dict[str, str], relative: str) -> "CgroupV1":
        return cls({c: os.path.join(mounts[c], relative) for c in V1_CONTROLLERS if c in mounts})

    def apply(self, r: Resources) -> None:
        if r.memory is not None:
            _write(self._file("memory", "memory.limit_in_bytes"), str(r.memory))
        if r.pids is not None:
            _write(self._file("pids", "pids.max"), str(r.pids) if r.pids > 0 else "max")
        if r.cpu_quota is not None:
            _write(self._file("cpu", "cpu.cfs_period_us"), str(r.cpu_period or 100000))
            _write(self._file("cpu", "cpu.cfs_quota_us"), str(r.cpu_quota))

    def _file(self, controller: str, name: str) -> str:
        d = self.by_controller.get(controller)
        if d is None:
            raise CgroupError(f"the {controller} cgroup controller is not mounted on this host")
        return os.path.join(d, name)

    def oom_killed(self) -> bool:
        d = self.by_controller.get("memory")
        return d is not None and _read_counter(os.path.join(d, "memory.oom_control"), "oom_kill") > 0

    def to_state(self) -> dict[str, object]:
        return {"version": "v1", "controllers": dict(self.by_controller)}


class CgroupV2(Cgroup):
    version = "v2"

    def __init__(self, mount: str, relative: str) -> None:
        self.mount = mount
        self.relative = relative
        super().__init__([os.path.join(mount, relative)])

    def create(self) -> None:
        # Each ancestor must delegate the controllers to its children before a limit can be set.
        try:
            with open(os.path.join(self.mount, "cgroup.controllers")) as f:
                available = set(f.read().split())
        except OSError:
            available = set()
        enable = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in available)
        current = self.mount
        for part in filter(None, self.relative.split("/")):
            if enable:
                _write(os.path.join(current, "cgroup.subtree_control"), enable)
            current = os.path.join(current, part)
            try:
                os.makedirs(current, exist_ok=True)
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {current}: {exc.strerror}") from None

    def apply(self, r: Resources) -> None:
        d = self.dirs[0]
        if r.memory is not None:
            _write(os.path.join(d, "memory.max"), str(r.memory))
            if os.path.exists(os.path.join(d, "memory.swap.max")):
                _write(os.path.join(d, "memory.swap.max"), str(r.memory))
        if r.pids is not None:
            _write(os.path.join(d, "pids.max"), str(r.pids) if r.pids > 0 else "max")
        if r.cpu_quota is not None:
            _write(os.path.join(d, "cpu.max"), f"{r.cpu_quota} {r.cpu_period or 100000}")

    def oom_killed(self) -> bool:
        return _read_counter(os.path.join(self.dirs[0], "memory.events"), "oom_kill") > 0

    def to_state(self) -> dict[str, object]:
        return {"version": "v2", "mount": str(self.mount), "relative": self.relative}


def for_container(info: CgroupInfo, parent: str, container_id: str,
                  resources: Resources) -> Cgroup | None:
    """The cgroup a container gets on this host for its limits, or None when it has none (or where
    the engine cannot manage cgroups). On v1 only the controllers its limits need are joined: moving
    a process into a v1 cgroup costs milliseconds per controller, on every container start."""
    relative = os.path.join(parent.strip("/") or "stockade", container_id)
    wanted = [c for c, v in (("memory", resources.memory), ("pids", resources.pids),
                             ("cpu", resources.cpu_quota)) if v is not None]
    if not wanted:
        return None
    if info.manager == "v2" and info.v2_mount:
        return CgroupV2(info.v2_mount, relative)
    if info.manager == "v1":
        return CgroupV1.under({c: info.v1_mounts[c] for c in wanted if c in info.v1_mounts}, relative)
    return None


def from_state(state: dict[str, object]) -> Cgroup | None:
    """Reopen the cgroup a container's state recorded (to read OOM counters and clean up)."""
    if state.get("version") == "v2":
        return CgroupV2(str(state["mount"]), str(state["relative"]))
    controllers = state.get("controllers")
    if state.get("version") == "v1" and isinstance(controllers, dict):
        return CgroupV1({str(c): str(d) for c, d in controllers.items()})
    return None
