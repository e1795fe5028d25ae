"""Kubernetes workloads -> input documents, one per container, with the line of every field.

Pods and the objects that hold a pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
CronJob, ReplicationController, PodTemplate), from multi-document YAML and the items of ``List``s;
init and ephemeral containers count as containers. Capability names and volume sources are read as
the API server and the runtime read them, never more leniently: only ``drop: [ALL]`` spelt so drops
every capability, and a null volume source is no source. The pod's
``securityContext`` supplies ``runAsUser``, ``runAsGroup``, ``runAsNonRoot`` and ``seccompProfile``
where a container does not set its own, as the kubelet merges them; the other fields exist only per
container. Unset fields take Kubernetes' effective value where it has one (``privileged`` false,
``allowPrivilegeEscalation`` true, a writable root, the host's user namespace unless
``hostUsers: false``) and stay ``null`` (not set) otherwise. The same translation serves
``policy check`` and the admission webhook.

A field of the wrong type (a string where a list belongs, a list where a mapping does) is a
``PolicyLoadError`` naming the file, line and field, which ``policy check`` reports with exit 2 and
the webhook as a 400 denial: the API server would refuse such an object, and reading the field as
"not set" could silently loosen a policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping  # typing.Mapping's isinstance is ~10x slower (a webhook's hot path)
from typing import Any

from policies.document import normalize_capability
from policies.model import parse_cpus
from policies.sources import Located, Source
from policies.typed import describe
from policies.yamlsource import Document, Path, format_path, load_documents

POD_SPEC_PATHS: dict[str, Path] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_CAPABILITY = re.compile(r"^[A-Z][A-Z0-9_]*\Z")
_INHERITED = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
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


_KINDS: dict[str, type | tuple[type, ...]] = {
    "a mapping": Mapping, "a list": list, "true or false": bool, "an integer": int, "a string": str,
    "a quantity": (str, int, float),
}


def _typed(doc: Document, path: Path, value: Any, expected: str) -> Any:
    """``value`` when it is null (not set) or of the ``expected`` kind (a key of ``_KINDS``).

    Anything else is one error naming the file, line and field: the API server refuses such an
    object, and reading a wrong-typed field as "not set" could loosen a policy without a word
    (``privileged: "true"``, ``capabilities: [SYS_ADMIN]``)."""
    if value is None:
        return None
    if isinstance(value, _KINDS[expected]) and (expected == "true or false" or not isinstance(value, bool)):
        return value
    raise doc.error(path, f"expected {expected}, found {describe(value)}")


def _dropped(name: str) -> str | None:
    """A ``capabilities.drop`` entry as the input document names it, or None when it drops nothing
    for certain.

    Only the exact Kubernetes spelling counts, as Pod Security admission reads it (``ALL``,
    ``NET_RAW``): containerd prefixes ``CAP_`` to the upper-cased name, so ``CAP_ALL`` or
    ``cap_net_raw`` drop nothing there, and the input document's normalisation (Docker's, where they
    do) would otherwise read them as dropped. An added name needs no such care: whatever it
    normalises to is judged against the allowlist."""
    return name if _CAPABILITY.match(name) and not name.startswith("CAP_") else None


def _annotation_profile(value: str) -> dict[str, Any]:
    """A legacy AppArmor annotation's value as the field would say it: ``runtime/default``,
    ``localhost/NAME`` and ``unconfined`` map to their types; any other value (nothing the kubelet
    runs) stays as written, so no allowlist of types accepts it. An empty value is unset."""
    if value == "runtime/default":
        return {"type": "RuntimeDefault", "profile": None}
    if value.startswith("localhost/"):
        return {"type": "Localhost", "profile": value[len("localhost/"):]}
    if value == "unconfined":
        return {"type": "Unconfined", "profile": None}
    return {"type": value or None, "profile": None}


def _list_or_empty(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(doc: Document, path: Path, value: Any) -> list[str]:
    """A list of strings (capability names); null is an empty list."""
    items = _typed(doc, path, value, "a list") or []
    for n, item in enumerate(items):
        if not isinstance(item, str):
            raise doc.error((*path, n), f"expected a string, found {describe(item)}")
    return items


class _Container:
    """One container of one pod spec, and the manifest path each input field came from.

    Every field read is type-checked where it is read (``_typed``), so a malformed object fails with
    the field's name and line instead of an AttributeError deep in the translation."""

    def __init__(self, doc: Document, pod_path: Path, pod: Mapping[str, Any], list_name: str, index: int,
                 raw: Mapping[str, Any]) -> None:
        self.doc, self.pod_path, self.pod, self.raw = doc, pod_path, pod, raw
        self.path: Path = (*pod_path, list_name, index)
        self.where: dict[str, Path] = {}
        self.own_sc = self.get(self.path, raw, "securityContext", "a mapping")
        self.pod_sc = self.get(pod_path, pod, "securityContext", "a mapping")

    def get(self, base: Path, mapping: Mapping[str, Any] | None, key: str, expected: str) -> Any:
        """``mapping[key]`` (found at ``base``) checked against ``expected``; None when not set."""
        return _typed(self.doc, (*base, key), None if mapping is None else mapping.get(key), expected)

    def sc(self, key: str, expected: str) -> tuple[Any, Path]:
        """A securityContext field, container first, then the pod's for the inherited ones."""
        own_path = (*self.path, "securityContext")
        value = self.get(own_path, self.own_sc, key, expected)
        if value is not None:
            return value, (*own_path, key)
        if key in _INHERITED:
            pod_path = (*self.pod_path, "securityContext")
            value = self.get(pod_path, self.pod_sc, key, expected)
            if value is not None:
                return value, (*pod_path, key)
        return None, (*own_path, key)

    def field(self, input_path: str, key: str, expected: str) -> Any:
        value, where = self.sc(key, expected)
        self.where[input_path] = where
        return value

    def build(self) -> dict[str, Any]:
        c: dict[str, Any] = {}
        uid = self.field("container.user", "runAsUser", "an integer")
        gid = self.sc("runAsGroup", "an integer")[0]
        if uid is not None:
            c["user"] = {"uid": uid, "gid": gid}
        c["runAsNonRoot"] = self.field("container.runAsNonRoot", "runAsNonRoot", "true or false")
        c["readOnlyRootFilesystem"] = self.field("container.readOnlyRootFilesystem", "readOnlyRootFilesystem",
                                                 "true or false") is True
        c["privileged"] = self.field("container.privileged", "privileged", "true or false") is True
        escalation = self.field("container.noNewPrivileges", "allowPrivilegeEscalation", "true or false")
        c["noNewPrivileges"] = escalation is False
        caps = self.field("container.capabilities", "capabilities", "a mapping") or {}
        caps_path = self.where["container.capabilities"]
        c["capabilities"] = {}
        for k in ("add", "drop"):
            self.where[f"container.capabilities.{k}"] = (*caps_path, k)
            names = _strings(self.doc, (*caps_path, k), caps.get(k))
            c["capabilities"][k] = [normalize_capability(x) for x in names] if k == "add" else \
                [x for x in map(_dropped, names) if x is not None]
        seccomp = self.field("container.seccomp", "seccompProfile", "a mapping")
        if seccomp is not None:
            where = self.where["container.seccomp"]
            kind = self.get(where, seccomp, "type", "a string")
            profile = self.get(where, seccomp, "localhostProfile", "a string")
            if kind:
                c["seccomp"] = {"type": kind, **({"profile": profile} if profile else {})}
        host = {key: self.get(self.pod_path, self.pod, key, "true or false")
                for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers")}
        c["namespaces"] = {
            "network": "host" if host["hostNetwork"] else "private",
            "uts": "host" if host["hostNetwork"] else "private",
            "pid": "host" if host["hostPID"] else "private",
            "ipc": "host" if host["hostIPC"] else "private",
            "user": "private" if host["hostUsers"] is False else "host",
        }
        for ns, key in (("network", "hostNetwork"), ("uts", "hostNetwork"), ("pid", "hostPID"),
                        ("ipc", "hostIPC"), ("user", "hostUsers")):
            self.where[f"container.namespaces.{ns}"] = (*self.pod_path, key)
        c["mounts"] = list(self._mounts())
        c["resources"] = self._resources()
        self._pod_security(c)
        return c

    def _pod_security(self, c: dict[str, Any]) -> None:
        """The settings only Pod Security "baseline" judges: host ports, sysctls (the pod's), AppArmor
        and SELinux (every setting that applies: the pod's, the container's own and, for AppArmor, the
        legacy annotation, each judged as PSA judges it, so a pod-level value a container overrides,
        and that a later ephemeral container would inherit, is refused now), procMount, HostProcess."""
        c["ports"] = []
        for n, port in enumerate(self.get(self.path, self.raw, "ports", "a list") or []):
            path = (*self.path, "ports", n)
            if not isinstance(port, Mapping):
                raise self.doc.error(path, f"a port must be a mapping, found {describe(port)}")
            self.where[f"container.ports[{n}]"] = path
            c["ports"].append({key: self.get(path, port, key, kind) for key, kind in (
                ("containerPort", "an integer"), ("hostPort", "an integer"), ("protocol", "a string"))})
        pod_sc_path = (*self.pod_path, "securityContext")
        c["sysctls"] = []
        for n, sysctl in enumerate(self.get(pod_sc_path, self.pod_sc, "sysctls", "a list") or []):
            path = (*pod_sc_path, "sysctls", n)
            if not isinstance(sysctl, Mapping):
                raise self.doc.error(path, f"a sysctl must be a mapping, found {describe(sysctl)}")
            self.where[f"container.sysctls[{n}]"] = path
            c["sysctls"].append({"name": self.get(path, sysctl, "name", "a string") or "",
                                 "value": self.get(path, sysctl, "value", "a string")})
        own_sc_path = (*self.path, "securityContext")
        scopes = ((pod_sc_path, self.pod_sc), (own_sc_path, self.own_sc))
        c["appArmor"] = self._in_scopes(scopes, "appArmorProfile", "appArmor", {
            "type": "type", "profile": "localhostProfile"})
        for path, value in self._apparmor_annotations():
            self.where[f"container.appArmor[{len(c['appArmor'])}]"] = path
            c["appArmor"].append(_annotation_profile(value))
        c["seLinux"] = self._in_scopes(scopes, "seLinuxOptions", "seLinux", {
            key: key for key in ("type", "user", "role", "level")})
        c["procMount"] = self.field("container.procMount", "procMount", "a string")
        c["hostProcess"] = None
        for base, sc in reversed(scopes):  # the container's own setting wins, as the kubelet reads it
            windows = self.get(base, sc, "windowsOptions", "a mapping")
            value = self.get((*base, "windowsOptions"), windows, "hostProcess", "true or false")
            if value is not None and c["hostProcess"] is not True:
                c["hostProcess"] = value
                self.where["container.hostProcess"] = (*base, "windowsOptions", "hostProcess")

    def _in_scopes(self, scopes: tuple[tuple[Path, Any], ...], key: str, name: str,
                   strings: dict[str, str]) -> list[dict[str, Any]]:
        """``key`` (a mapping of strings) in each securityContext of ``scopes`` that sets it, as the
        input document's ``container.NAME`` entries (``strings``: document key -> manifest key)."""
        out: list[dict[str, Any]] = []
        for base, sc in scopes:
            value = self.get(base, sc, key, "a mapping")
            if value is not None:
                path = (*base, key)
                self.where[f"container.{name}[{len(out)}]"] = path
                out.append({k: self.get(path, value, source, "a string") for k, source in strings.items()})
        return out

    def _apparmor_annotations(self) -> Iterator[tuple[Path, str]]:
        """The legacy ``container.apparmor.security.beta.kubernetes.io/NAME`` annotations of the pod
        that name this container, or no container of the pod at all (PSA judges every one)."""
        meta_path = (*self.pod_path[:-1], "metadata")
        meta: Any = self.doc.value
        for depth, key in enumerate(meta_path):
            meta = self.get(meta_path[:depth], meta, key, "a mapping")
        annotations = self.get(meta_path, meta, "annotations", "a mapping") or {}
        names: set[str] | None = None
        for key in annotations:
            if isinstance(key, str) and key.startswith(APPARMOR_ANNOTATION):
                name = key[len(APPARMOR_ANNOTATION):]
                if names is None:  # a list of the wrong type is reported where the containers are read
                    names = {c.get("name") for list_name in CONTAINER_LISTS
                             for c in _list_or_empty(self.pod.get(list_name))
                             if isinstance(c, Mapping) and isinstance(c.get("name"), str)}
                if name == self.raw.get("name") or name not in names:
                    path = (*meta_path, "annotations", key)
                    yield path, _typed(self.doc, path, annotations[key], "a string") or ""

    def _resources(self) -> dict[str, Any]:
        resources = self.get(self.path, self.raw, "resources", "a mapping")
        where = (*self.path, "resources", "limits")
        limits = self.get(where[:-1], resources, "limits", "a mapping")
        self.where["container.resources"] = where
        cpu = self.get(where, limits, "cpu", "a quantity")
        memory = self.get(where, limits, "memory", "a quantity")
        cpus = mem = None
        if cpu is not None:
            try:
                cpus = parse_cpus(cpu)
            except ValueError as exc:
                raise self.doc.error((*where, "cpu"), str(exc)) from None
        if memory is not None:
            mem = memory_bytes(memory)
            if mem is None:
                raise self.doc.error((*where, "memory"), f"{memory!r} is not a Kubernetes quantity "
                                                         "(use e.g. 512Mi or 1G)")
        return {"memory": mem, "cpus": cpus, "pids": None}

    def _mounts(self) -> Iterator[dict[str, Any]]:
        volumes: dict[str, tuple[Mapping[str, Any], Path]] = {}
        for n, volume in enumerate(self.get(self.pod_path, self.pod, "volumes", "a list") or []):
            path = (*self.pod_path, "volumes", n)
            if not isinstance(volume, Mapping):
                raise self.doc.error(path, f"a volume must be a mapping, found {describe(volume)}")
            name = self.get(path, volume, "name", "a string") or ""
            if name in volumes:  # the API server refuses it; either reading could hide a hostPath
                raise self.doc.error((*path, "name"), f"duplicate volume name {name!r}")
            volumes[name] = volume, path
        for n, vm in enumerate(self.get(self.path, self.raw, "volumeMounts", "a list") or []):
            path = (*self.path, "volumeMounts", n)
            if not isinstance(vm, Mapping):
                raise self.doc.error(path, f"a volume mount must be a mapping, found {describe(vm)}")
            volume, volume_path = volumes.get(self.get(path, vm, "name", "a string") or "", ({}, path))
            # A null source is no source (the API server drops it): `emptyDir: null` beside a
            # hostPath must not make the volume read as an emptyDir.
            kinds = [k for k, v in volume.items() if k != "name" and v is not None]
            if len(kinds) > 1:
                raise self.doc.error(volume_path, f"a volume has more than one source ({', '.join(map(str, kinds))})")
            kind = kinds[0] if kinds else "missing"
            mount: dict[str, Any] = {"destination": self.get(path, vm, "mountPath", "a string") or "",
                                     "readOnly": self.get(path, vm, "readOnly", "true or false") is True,
                                     "kind": kind}
            if kind in ("hostPath", "emptyDir"):
                source = self.get(volume_path, volume, kind, "a mapping")
                detail = self.get((*volume_path, kind), source, "path" if kind == "hostPath" else "medium",
                                  "a string")
            if kind == "hostPath":
                mount.update(type="bind", source=detail or "")
            elif kind == "emptyDir" and detail == "Memory":
                mount["type"] = "tmpfs"
            else:
                mount["type"] = "volume"
            self.where[f"container.mounts[{n}]"] = path
            yield mount


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
        _objects(doc, f"document {doc.index + 1}", located, skipped)
    return located, skipped


def _objects(doc: Document, label: str, located: list[Located], skipped: list[str]) -> None:
    """The workloads of one object; a ``List`` (what ``kubectl get -o yaml`` prints, and ``kubectl
    apply`` creates item by item) stands for its items, each judged as if it were its own document."""
    obj = doc.value
    kind = _typed(doc, ("kind",), obj.get("kind"), "a string") if isinstance(obj, Mapping) else None
    if kind == "List":
        items = _typed(doc, ("items",), obj.get("items"), "a list") or []
        if not items:
            skipped.append(f"{label}: kind List has no items")
        marks: dict[int, dict[Path, tuple[int, int]]] = {}  # each item's lines, found in one pass
        for path, mark in doc.marks.items():
            if len(path) > 1 and path[0] == "items" and isinstance(path[1], int):
                marks.setdefault(path[1], {})[path[2:]] = mark
        for n, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise doc.error(("items", n), f"a List item must be a mapping, found {describe(item)}")
            _objects(Document(item, doc.file, marks.get(n, {}), doc.index), f"{label} item {n + 1}",
                     located, skipped)
    elif kind not in POD_SPEC_PATHS:
        skipped.append(f"{label}: kind {kind or '(none)'} has no containers")
    else:
        located += _workload_documents(doc, kind)


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


def _pod_spec(doc: Document, kind: str) -> Mapping[str, Any]:
    """The pod spec (or template spec) of a workload; an error names the first step that is not a
    mapping."""
    value: Any = doc.value
    pod_path = POD_SPEC_PATHS[kind]
    for depth, key in enumerate(pod_path, 1):
        value = value.get(key)
        if not isinstance(value, Mapping):
            found = "" if value is None else f" ({format_path(pod_path[:depth])} is {describe(value)})"
            raise doc.error(pod_path[:depth], f"{kind} has no pod spec here{found}")
    return value


def _workload_documents(doc: Document, kind: str) -> list[Located]:
    """One input document per init, regular and ephemeral container of one workload."""
    located: list[Located] = []
    obj, file = doc.value, doc.file
    pod_path = POD_SPEC_PATHS[kind]
    meta = _typed(doc, ("metadata",), obj.get("metadata"), "a mapping") or {}
    name = _typed(doc, ("metadata", "name"), meta.get("name"), "a string") or "(unnamed)"
    namespace = _typed(doc, ("metadata", "namespace"), meta.get("namespace"), "a string") or "default"
    pod = _pod_spec(doc, kind)
    for list_name in CONTAINER_LISTS:
        containers = _typed(doc, (*pod_path, list_name), pod.get(list_name), "a list") or []
        if list_name == "containers" and not containers:
            raise doc.error((*pod_path, list_name), "a pod spec needs at least one container")
        for index, raw in enumerate(containers):
            if not isinstance(raw, Mapping):
                raise doc.error((*pod_path, list_name, index),
                                f"a container must be a mapping, found {describe(raw)}")
            image = raw.get("image")
            if not isinstance(image, str) or not image:
                raise doc.error((*pod_path, list_name, index, "image"), "a container needs an image")
            cname = _typed(doc, (*pod_path, list_name, index, "name"), raw.get("name"), "a string") or str(index)
            cont = _Container(doc, pod_path, pod, list_name, index, raw)
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
