"""Where a bundle's container goes in the cgroup tree: ``linux.cgroupsPath`` in either of its forms.

* cgroupfs form (the default): a path such as ``/libpod_parent/libpod-<id>`` or ``/default/<id>``
  (containerd), taken from the root of each hierarchy. A relative path is taken from the root too.
  Without one the container gets ``/stockade-runtime/<id>``.
* systemd form (``--systemd-cgroup``): ``slice:prefix:name``, e.g. ``system.slice:cri-containerd:<id>``.
  There is no systemd here to ask for a transient scope, so the runtime puts the container exactly
  where systemd would have: ``/system.slice/cri-containerd-<id>.scope`` (a nested slice such as
  ``kubepods-besteffort.slice`` expands to ``kubepods.slice/kubepods-besteffort.slice``), created
  directly through cgroupfs. Nothing talks to D-Bus.

Every container gets a cgroup, limits or not (unlike ``stockade run``, which skips it without
limits): containerd's shim watches its memory controller for OOM kills, and ``ps``, ``kill --all`` and
``delete`` find the container's processes there. On cgroup v2 that is one directory. On v1 it is the
memory hierarchy always, and pids and cpu only when the bundle limits them: moving a process into a v1
cgroup costs milliseconds per hierarchy (measured: ~6 ms each here), on every container start.
"""

from __future__ import annotations

import posixpath

from engine.errors import StockadeError
from engine.runtime import cgroups

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (see engine/runtime/cgroups.py)
if TYPE_CHECKING:
    from engine.spec import Resources


class CgroupPathError(StockadeError):
    """``linux.cgroupsPath`` is malformed."""


def _slice_path(name: str) -> str:
    """``a-b-c.slice`` -> ``a.slice/a-b.slice/a-b-c.slice`` (systemd's slice nesting)."""
    if name in ("", "-.slice"):
        return ""
    if not name.endswith(".slice") or "/" in name:
        raise CgroupPathError(f"linux.cgroupsPath: {name!r} is not a systemd slice name")
    parts = name[:-len(".slice")].split("-")
    if any(not p for p in parts):
        raise CgroupPathError(f"linux.cgroupsPath: {name!r} is not a valid slice name")
    return "/".join("-".join(parts[:i + 1]) + ".slice" for i in range(len(parts)))


def relative(path: str, cid: str, *, systemd: bool) -> str:
    """The container's cgroup, relative to each hierarchy's root (no leading slash)."""
    if systemd:
        if not path:
            return f"system.slice/stockade-runtime-{cid}.scope"
        parts = path.split(":")
        if len(parts) != 3 or not parts[2]:
            raise CgroupPathError(f"linux.cgroupsPath {path!r}: with --systemd-cgroup it must be "
                                  "slice:prefix:name")
        slice_, prefix, name = parts
        unit = name if name.endswith(".slice") else (f"{prefix}-{name}.scope" if prefix else f"{name}.scope")
        if "/" in unit:
            raise CgroupPathError(f"linux.cgroupsPath {path!r}: a unit name cannot contain '/'")
        out = posixpath.join(_slice_path(slice_ or "system.slice"), unit)
    else:
        out = path.strip("/") or f"stockade-runtime/{cid}"
    if ".." in out.split("/"):
        raise CgroupPathError(f"linux.cgroupsPath {path!r} leaves the cgroup hierarchy")
    return posixpath.normpath(out)


def for_container(path: str, cid: str, resources: Resources, *, systemd: bool) -> cgroups.Cgroup | None:
    """The container's cgroup on this host (None where no controller is mounted)."""
    from engine.host import probe_cgroups

    where = relative(path, cid, systemd=systemd)
    info = probe_cgroups()
    if info.manager == "v2" and info.v2_mount:
        return cgroups.CgroupV2(info.v2_mount, where)
    wanted = {"memory"} | {c for c, v in (("pids", resources.pids), ("cpu", resources.cpu_quota)) if v is not None}
    mounts = {c: info.v1_mounts[c] for c in cgroups.V1_CONTROLLERS if c in info.v1_mounts and c in wanted}
    if not mounts:
        return None
    return cgroups.CgroupV1.under(mounts, where)


def create(cgroup: cgroups.Cgroup, resources: Resources) -> None:
    """Make the cgroup and write the limits (undone if a limit cannot be written)."""
    cgroup.create()
    try:
        cgroup.apply(resources)
    except BaseException:
        cgroup.destroy()
        raise
