"""Kubernetes workloads -> input documents, one per container, with the line of every field.

Pods and the controllers that make them (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
CronJob), from multi-document YAML; init and ephemeral containers count as containers. The pod's
``securityContext`` supplies ``runAsUser``, ``runAsGroup``, ``runAsNonRoot`` and ``seccompProfile``
where a container does not set its own, as the kubelet merges them; the other fields exist only per
container. Unset fields take Kubernetes' effective value where it has one (``privileged`` false,
``allowPrivilegeEscalation`` true, a writable root, the host's user namespace unless
``hostUsers: false``) and stay ``null`` (not set) otherwise. The same translation serves
``policy check`` and the admission webhook.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping  # typing.Mapping's isinstance is ~10x slower (a webhook's hot path)
from typing import Any

from policies.document import normalize_capability
from policies.model import parse_cpus
from policies.sources import Located, Source
from policies.yamlsource import Document, Path, format_path, load_documents

POD_SPEC_PATHS: dict[str, Path] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_INHERITED = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(?:([eE]\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m))?$")
_FACTORS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "m": 10**-3}


def memory_bytes(value: Any) -> int | None:
    """A Kubernetes quantity (``128Mi``, ``1G``, ``1e9``) as bytes; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    m = _QUANTITY.match(str(value).strip())
    if not m:
        return None
    number = float(m.group(1))
    if m.group(2):
        return int(number * 10 ** int(m.group(2)[1:]))
    return int(number * _FACTORS[m.group(3)])


def _get(value: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(value, Mapping) and isinstance(key, str):
            value = value.get(key)
        elif isinstance(value, list) and isinstance(key, int) and key < len(value):
            value = value[key]
        else:
            return None
    return value


class _Container:
    """One container of one pod spec, and the manifest path each input field came from."""

    def __init__(self, doc: Document, pod_path: Path, list_name: str, index: int) -> None:
        self.doc, self.pod_path = doc, pod_path
        self.pod = _get(doc.value, *pod_path) or {}
        self.path: Path = (*pod_path, list_name, index)
        self.raw = _get(doc.value, *self.path) or {}
        self.list_name = list_name
        self.where: dict[str, Path] = {}

    def sc(self, key: str) -> Any:
        """A securityContext field, container first, then the pod's for the inherited ones."""
        own = _get(self.raw, "securityContext")
        if isinstance(own, Mapping) and key in own:
            return own[key], (*self.path, "securityContext", key)
        pod_sc = _get(self.pod, "securityContext")
        if key in _INHERITED and isinstance(pod_sc, Mapping) and key in pod_sc:
            return pod_sc[key], (*self.pod_path, "securityContext", key)
        return None, (*self.path, "securityContext", key)

    def field(self, input_path: str, key: str) -> Any:
        value, where = self.sc(key)
        self.where[input_path] = where
        return value

    def build(self) -> dict[str, Any]:
        c: dict[str, Any] = {}
        uid, gid = self.field("container.user", "runAsUser"), self.sc("runAsGroup")[0]
        if isinstance(uid, int) and not isinstance(uid, bool):
            c["user"] = {"uid": uid, "gid": gid if isinstance(gid, int) else None}
        c["runAsNonRoot"] = _bool(self.field("container.runAsNonRoot", "runAsNonRoot"))
        c["readOnlyRootFilesystem"] = _bool(self.field("container.readOnlyRootFilesystem",
                                                        "readOnlyRootFilesystem")) is True
        c["privileged"] = _bool(self.field("container.privileged", "privileged")) is True
        escalation = _bool(self.field("container.noNewPrivileges", "allowPrivilegeEscalation"))
        c["noNewPrivileges"] = escalation is False
        caps = self.field("container.capabilities", "capabilities") or {}
        self.where["container.capabilities.add"] = (*self.where["container.capabilities"], "add")
        self.where["container.capabilities.drop"] = (*self.where["container.capabilities"], "drop")
        c["capabilities"] = {k: [normalize_capability(str(x)) for x in _list(_get(caps, k))] for k in ("add", "drop")}
        seccomp = self.field("container.seccomp", "seccompProfile")
        if isinstance(seccomp, Mapping) and seccomp.get("type"):
            c["seccomp"] = {"type": str(seccomp["type"])}
            if seccomp.get("localhostProfile"):
                c["seccomp"]["profile"] = str(seccomp["localhostProfile"])
        host_network = _bool(self.pod.get("hostNetwork")) is True
        c["namespaces"] = {
            "network": "host" if host_network else "private",
            "uts": "host" if host_network else "private",
            "pid": "host" if _bool(self.pod.get("hostPID")) else "private",
            "ipc": "host" if _bool(self.pod.get("hostIPC")) else "private",
            "user": "private" if _bool(self.pod.get("hostUsers")) is False else "host",
        }
        for ns, key in (("network", "hostNetwork"), ("uts", "hostNetwork"), ("pid", "hostPID"),
                        ("ipc", "hostIPC"), ("user", "hostUsers")):
            self.where[f"container.namespaces.{ns}"] = (*self.pod_path, key)
        c["mounts"] = list(self._mounts())
        limits = _get(self.raw, "resources", "limits") or {}
        self.where["container.resources"] = (*self.path, "resources", "limits")
        cpus = None
        if limits.get("cpu") is not None:
            try:
                cpus = parse_cpus(limits["cpu"])
            except ValueError:
                cpus = None
        c["resources"] = {"memory": memory_bytes(limits.get("memory")) if limits.get("memory") is not None else None,
                          "cpus": cpus, "pids": None}
        return c

    def _mounts(self) -> Iterator[dict[str, Any]]:
        volumes = {v.get("name"): v for v in _list(self.pod.get("volumes")) if isinstance(v, Mapping)}
        for n, vm in enumerate(_list(self.raw.get("volumeMounts"))):
            if not isinstance(vm, Mapping):
                continue
            volume = volumes.get(vm.get("name")) or {}
            kinds = [k for k in volume if k != "name"]
            kind = kinds[0] if kinds else "missing"
            mount: dict[str, Any] = {"destination": str(vm.get("mountPath") or ""), "readOnly": vm.get("readOnly") is True,
                                     "kind": kind}
            if kind == "hostPath":
                mount.update(type="bind", source=str(_get(volume, "hostPath", "path") or ""))
            elif kind == "emptyDir" and _get(volume, "emptyDir", "medium") == "Memory":
                mount["type"] = "tmpfs"
            else:
                mount["type"] = "volume"
            self.where[f"container.mounts[{n}]"] = (*self.path, "volumeMounts", n)
            yield mount


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _locator(doc: Document, where: dict[str, Path], default: Path):  # type: ignore[no-untyped-def]
    def locate(input_path: str) -> tuple[int | None, str | None]:
        probe = input_path
        while probe:
            if probe in where:
                path = where[probe]
                return doc.line_of(path)[0], format_path(path)
            probe = probe[:probe.rindex("[")] if probe.endswith("]") else probe.rpartition(".")[0]
        return doc.line_of(default)[0], format_path(default)
    return locate


def documents_from_manifests(text: str, file: str) -> tuple[list[Located], list[str]]:
    """Input documents for every container of every workload in ``text``, and what was skipped."""
    located: list[Located] = []
    skipped: list[str] = []
    for doc in load_documents(text, file, max_nodes=2_000_000):
        obj = doc.value
        kind = obj.get("kind") if isinstance(obj, Mapping) else None
        if kind == "List" and isinstance(obj.get("items"), list):
            skipped.append(f"document {doc.index + 1}: kind List (expand it: kubectl get -o yaml lists)")
            continue
        if kind not in POD_SPEC_PATHS:
            skipped.append(f"document {doc.index + 1}: kind {kind or '(none)'} has no containers")
            continue
        located += _workload_documents(doc, kind)
    return located, skipped


def documents_from_object(obj: Mapping[str, Any], kind: str, source: str) -> list[Located]:
    """Input documents for every container of one workload that is already parsed (the admission
    webhook's ``request.object``), exactly as ``documents_from_manifests`` builds them.

    ``kind`` is one of ``POD_SPEC_PATHS`` (the caller's authority on it, e.g. the review's
    ``request.kind``); ``source`` names the object in errors and in ``context.file``. There are no
    lines, so sources carry only field paths. A workload without a pod spec or a container without
    an image raises ``PolicyLoadError`` naming the field.
    """
    if kind not in POD_SPEC_PATHS:
        raise ValueError(f"kind {kind!r} has no pod template (expected one of {', '.join(POD_SPEC_PATHS)})")
    return _workload_documents(Document(obj, source), kind)


def _workload_documents(doc: Document, kind: str) -> list[Located]:
    """One input document per init, regular and ephemeral container of one workload."""
    located: list[Located] = []
    obj, file = doc.value, doc.file
    pod_path = POD_SPEC_PATHS[kind]
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name, namespace = str(meta.get("name") or "(unnamed)"), str(meta.get("namespace") or "default")
    pod = _get(obj, *pod_path)
    if not isinstance(pod, Mapping):
        raise doc.error(pod_path, f"{kind} has no pod spec here")
    for list_name in CONTAINER_LISTS:
        for index, raw in enumerate(_list(pod.get(list_name))):
            if not isinstance(raw, Mapping):
                raise doc.error((*pod_path, list_name, index), "a container must be a mapping")
            cont = _Container(doc, pod_path, list_name, index)
            cname = str(raw.get("name") or index)
            image = raw.get("image")
            if not isinstance(image, str) or not image:
                raise doc.error((*pod_path, list_name, index, "image"), "a container needs an image")
            container = cont.build()
            cont.where["image"] = (*cont.path, "image")
            identity = f"{kind}/{namespace}/{name} {list_name}[{cname}]"
            document = {"image": {"reference": image}, "container": container,
                        "context": {"kind": "kubernetes", "file": file, "object": {
                            "kind": kind, "name": name, "namespace": namespace},
                            "container": cname, "containerType": list_name,
                            "path": format_path(cont.path)}}
            line = doc.line_of(cont.path)[0]
            located.append(Located(document, Source(file, line, identity, f"{kind}/{name}[{cname}]",
                                                    _locator(doc, cont.where, cont.path))))
    return located
