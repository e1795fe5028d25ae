"""The ``run`` pipeline: reference -> digest -> admission -> layers -> spec -> launch.

Each step is one function, so the order the design promises is visible here and nowhere else:

1. ``resolve``: the reference becomes a manifest digest, from the store or by asking the registry
   (nothing is written yet);
2. ``admit``: **the policy gate** (``stockade.gate``). The request, the resolved digest and the
   image's configuration meet the policy (``--policy``, else ``[policy] default``): the signatures it
   requires are verified (cached), what the user did not ask for gets the policy's hardened value,
   and the decision is taken. A denial raises ``PolicyDenied`` (exit 122) with every violation; since
   nothing has been pulled, unpacked or created yet, a denied request writes nothing. An admitted
   request comes back with its effective settings and the hardening (``hardening.defaults``) they
   mean;
3. ``materialize``: pull what is missing and unpack the layers (skipped for a cached image);
4. ``compile``: the seccomp program for the admitted profile and capability set (cached by content);
5. ``create`` and launch: the engine gets plain values only (capability names, a BPF file's path,
   masked paths) and never imports ``hardening``.

The warm path (image in the store, filter in the cache, the decision in the admission cache) imports
no registry client, no libseccomp binding and nothing of trust or policy: those load only on the steps
that need them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from engine.containers.create import CreateOptions
from engine.errors import StockadeError
from engine.records import Record, field, replace
from hardening.defaults import Hardening
from stockade.context import Context
from stockade.gate import Admitted


class RunRequest(Record):
    """Everything ``run``/``create`` was asked, as parsed from the command line."""

    image: str
    options: CreateOptions
    rootfs: bool = False  # IMAGE is a directory used as the root (podman's --rootfs)
    pull: str = "missing"  # missing | always | never
    detach: bool = False
    seccomp: str | None = None  # from --security-opt seccomp=…
    no_new_privileges: bool | None = None  # from --security-opt no-new-privileges[=…]
    log: tuple[int | None, int | None] = (None, None)  # --log-opt max-size, max-file
    policy: str | None = None  # --policy NAME|FILE (None: [policy] default)
    warnings: list[str] = field(default_factory=list)


class Resolved(Record):
    """Where ``resolve`` found the image: a digest and, when it is in the store, the stored image."""

    reference: str
    digest: str = ""  # manifest digest ("" for --rootfs)
    image: Any = None  # engine.store.Image when present locally


def resolve(ctx: Context, req: RunRequest) -> Resolved:
    if req.rootfs:
        path = Path(req.image)
        if not path.is_dir():
            raise StockadeError(f"--rootfs {req.image}: not a directory")
        return Resolved(reference=str(path.absolute()))
    from engine.errors import NotFoundError
    from engine.store import Store

    store = Store(ctx.paths, ctx.config)
    if req.pull != "always":
        try:
            image = store.resolve(req.image)
            return Resolved(reference=req.image, digest=image.digest, image=image)
        except NotFoundError:
            if req.pull == "never":
                raise
    from engine.reference import Reference
    from engine.registry.client import RegistryClient

    ref = Reference.parse(req.image)
    client = RegistryClient(ctx.config, ctx.paths)
    try:
        found = client.head_manifest(ref)
        if found is None:
            raise NotFoundError(f"image {ref} was not found in its registry")
        return Resolved(reference=str(ref), digest=found.digest)
    finally:
        client.close()


def admit(ctx: Context, req: RunRequest, resolved: Resolved) -> Admitted:
    """The policy gate (see the module docstring): the admitted request and its hardening, or a refusal."""
    from stockade.gate import admit as gate

    return gate(ctx, req, resolved)


def materialize(ctx: Context, req: RunRequest, resolved: Resolved) -> tuple[str, dict[str, Any], list[str]]:
    """(image id, image config's ``config``, layer directories bottom to top), pulling if needed."""
    if req.rootfs:
        return "", {}, []
    from engine.store import Store

    store = Store(ctx.paths, ctx.config)
    image = resolved.image
    if image is None:
        from engine.reference import Reference
        from engine.registry.client import RegistryClient

        ref = Reference.parse(req.image)
        client = RegistryClient(ctx.config, ctx.paths)
        try:
            image = store.pull(ref.with_digest(resolved.digest) if not ref.digest else ref, client).image
        finally:
            client.close()
        if not ref.digest:
            store.tag(f"{ref.name}@{resolved.digest}", str(ref), resolved=resolved.digest)
    config = store.image_config(image).get("config") or {}
    return image.id, config, [str(p) for p in store.layer_dirs(image)]


def seccomp_program(ctx: Context, hardening: Hardening) -> str:
    if hardening.seccomp_profile is None:
        return ""
    from hardening.seccomp import compiled_filter

    path = compiled_filter(hardening.seccomp_profile, hardening.capabilities, ctx.paths.cache / "seccomp")
    return str(path) if path else ""


def prepare(ctx: Context, req: RunRequest) -> CreateOptions:
    """Steps 1-4: the plain options the engine creates the container from."""
    resolved = resolve(ctx, req)
    admitted = admit(ctx, req, resolved)
    hardening = admitted.hardening
    image_id, config, layers = materialize(ctx, req, resolved)
    return replace(
        admitted.request.options, image_id=image_id, image_config=config, layers=layers,
        rootfs=resolved.reference if req.rootfs else "",
        capabilities=hardening.capabilities, no_new_privileges=hardening.no_new_privileges,
        seccomp_program=seccomp_program(ctx, hardening), masked_paths=hardening.masked_paths,
        readonly_paths=hardening.readonly_paths, storage_driver=ctx.config.storage.driver)


def create(ctx: Context, req: RunRequest) -> dict[str, Any]:
    from engine.containers.create import create as create_container

    for warning in req.warnings:
        sys.stderr.write(f"stockade: warning: {warning}\n")
    return create_container(ctx.paths, prepare(ctx, req))


def run(ctx: Context, req: RunRequest) -> int:
    """``stockade run``: create, then start attached (the exit code is the container's) or detached."""
    doc = create(ctx, req)
    if req.detach:
        from engine.containers.monitor import start_detached

        start_detached(ctx.paths, doc["Id"])
        sys.stdout.write(doc["Id"] + "\n")
        return 0
    from engine.containers.monitor import run_attached

    sys.stdout.flush()
    return run_attached(ctx.paths, doc["Id"], interactive=req.options.interactive)
