"""Image verbs, as Docker names them: ``pull``, ``push``, ``images``, ``rmi``, ``tag``, ``history``,
``save``, ``load``, ``import``, and the ``image`` group (``image ls|list|rm|pull|push|tag|inspect|
history|prune|save|load|import``).

Handlers stay thin: parse, call the store or the registry client, print. Progress bars go to stderr
and only on a terminal; everything a script reads goes to stdout (``-o json`` where it makes sense).
"""

from __future__ import annotations

import argparse
import calendar
import os
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator

from engine.errors import StockadeError, UsageError
from engine.reference import Reference
from stockade.context import Context
from stockade.output import add_output_flag, human_size, print_json, print_mapping, print_table

if TYPE_CHECKING:  # the store and the network code load only in the verbs that use them
    from engine.registry.client import RegistryClient
    from engine.registry.credentials import Credentials
    from engine.registry.platform import Platform
    from engine.store import Image, InUse, Store


# --- shared helpers (also used by login and by the run pipeline) -----------------------------------

def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_registry_flags(p: argparse.ArgumentParser, *, creds: bool = True) -> None:
    """podman's registry options: ``--tls-verify=BOOL``, ``--cert-dir``, ``--creds``, ``--authfile``."""
    p.add_argument("--tls-verify", type=_bool, default=None, metavar="BOOL",
                   help="require HTTPS with a verified certificate (default: true, except for "
                        "loopback and registries.insecure); false allows plain HTTP")
    p.add_argument("--cert-dir", type=Path, metavar="DIR",
                   help="directory with the registry's CA (*.crt) and client certificates")
    p.add_argument("--authfile", type=Path, metavar="FILE",
                   help="credentials file (default: $REGISTRY_AUTH_FILE or <config dir>/auth.json)")
    if creds:
        p.add_argument("--creds", metavar="USER[:PASSWORD]",
                       help="credentials for this command (prompted for the password if omitted)")


def registry_client(ctx: Context, credentials: "Credentials | None" = None) -> "RegistryClient":
    """A client from the configuration and the registry flags of this command (``credentials``
    replace any stored ones, as ``--creds`` does)."""
    from engine.registry.client import RegistryClient
    from engine.registry.credentials import Credentials

    args = ctx.args
    if credentials is None and getattr(args, "creds", None):
        user, sep, password = args.creds.partition(":")
        if not sep:
            password = prompt_password(user, "give USER:PASSWORD, or use a terminal")
        credentials = Credentials(user, password)
    return RegistryClient(ctx.config, ctx.paths, tls_verify=getattr(args, "tls_verify", None),
                          cert_dir=getattr(args, "cert_dir", None), credentials=credentials,
                          auth_file=getattr(args, "authfile", None))


def prompt_password(user: str, alternative: str) -> str:
    """Ask for a registry password on the terminal; without one (CI has no stdin) say what to use
    instead, rather than block or read an empty line."""
    if not sys.stdin.isatty():
        raise UsageError(f"no password for {user}: {alternative}")
    import getpass

    return getpass.getpass(f"Password for {user}: ")


def open_store(ctx: Context) -> Store:
    from engine.store import Store

    return Store(ctx.paths, ctx.config)


def _platform(text: str | None) -> Platform | None:
    from engine.registry.platform import Platform

    return Platform.parse(text) if text else None


def images_in_use(ctx: Context) -> InUse:
    """The predicate the store's ``remove`` and ``prune`` take: does a container (any state) use
    this image? Containers record the image ID (the config digest) they were created from."""
    from engine.containers.lifecycle import images_in_use as used_ids
    from engine.containers.store import ContainerStore

    used = used_ids(ContainerStore(ctx.paths))
    return lambda image: image.id in used or image.digest in used


def _progress(ctx: Context, *, pushing: bool = False) -> Any:
    """A progress renderer on stderr when it is a terminal (and output is for people), else None."""
    if ctx.output == "json" or getattr(ctx.args, "quiet", False) or not sys.stderr.isatty():
        return None
    from stockade.progress import LayerProgress

    return LayerProgress(sys.stderr, pushing=pushing)


def _short(digest: str, no_trunc: bool = False) -> str:
    return digest if no_trunc else digest.partition(":")[2][:12]


def _shown(value: object) -> str:
    """Text from an image config (a registry's or an archive's words) made safe for a terminal:
    an escape sequence in ``created`` or ``created_by`` is shown, not run."""
    from engine.errors import printable

    return printable("" if value is None else str(value))


def _shown_all(value: Any) -> Any:
    """:func:`_shown` through a document's strings (keys too), for the text renderers."""
    if isinstance(value, dict):
        return {_shown(k): _shown_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown_all(v) for v in value]
    return _shown(value) if isinstance(value, str) else value


def _ago(timestamp: str | None) -> str:
    """``3 days ago`` from an RFC 3339 time, as ``docker images`` prints CREATED."""
    if not timestamp:
        return "N/A"
    try:
        then = calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))  # UTC
    except ValueError:
        return _shown(timestamp)
    seconds = max(0, time.time() - then)
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "Less than a minute ago"


# --- pull / push ------------------------------------------------------------------------------------

def cmd_pull(ctx: Context) -> int:
    args = ctx.args
    ref = Reference.parse(args.image)
    platform = _platform(args.platform)
    store, client = open_store(ctx), registry_client(ctx)
    bars = _progress(ctx)
    try:
        if bars:
            sys.stderr.write(f"Pulling {ref}\n")
        result = store.pull(ref, client, platform=platform, progress=bars.update if bars else None)
    finally:
        if bars:
            bars.close()
        client.close()
    if ctx.output == "json":
        print_json({"reference": str(ref), "digest": result.digest, "id": result.image.id,
                    "manifest": result.image.digest, "downloaded": result.downloaded})
        return 0
    if sys.stdout.isatty() and not args.quiet:
        status = "Downloaded newer image for" if result.downloaded else "Image is up to date for"
        print(f"Status: {status} {ref}")
    print(f"Digest: {result.digest}")
    return 0


def cmd_push(ctx: Context) -> int:
    from engine.store.push import push

    args = ctx.args
    store = open_store(ctx)
    image = store.resolve(args.image)
    dest = Reference.parse(args.destination or args.image)
    if args.destination is None and args.image not in (str(dest), dest.name) \
            and f"{dest.name}:{dest.tag}" not in image.repo_tags:
        raise UsageError(f"push {args.image}: give a destination reference (an ID has no registry)")
    chunk = None
    if args.chunk_size:
        from engine.config import parse_size

        try:
            chunk = parse_size(args.chunk_size)
        except ValueError as exc:
            raise UsageError(f"--chunk-size: {exc}") from None
    client = registry_client(ctx)
    bars = _progress(ctx, pushing=True)
    try:
        if bars:
            sys.stderr.write(f"Pushing {dest}\n")
        result = push(store, client, image, dest, chunk_size=chunk, progress=bars.update if bars else None)
    finally:
        if bars:
            bars.close()
        client.close()
    if args.digestfile:
        args.digestfile.write_text(result.digest)
    if ctx.output == "json":
        print_json({"reference": str(dest), "digest": result.digest, "size": result.size,
                    "uploaded": result.uploaded})
    else:
        print(f"{dest.tag or dest.digest}: digest: {result.digest} size: {result.size}")
    return 0


# --- listing and inspection --------------------------------------------------------------------------

def _rows(images: list[Image]) -> Iterator[tuple[dict[str, Any], Image]]:
    """One row per (image, tag), untagged images once: what ``docker images`` lists."""
    for image in sorted(images, key=lambda i: i.added, reverse=True):
        for tag in image.repo_tags or (None,):
            repository, name_tag = (tag.rpartition(":")[0], tag.rpartition(":")[2]) if tag else (None, None)
            repo_digest = next((d.partition("@")[2] for d in image.repo_digests
                                if repository and d.partition("@")[0] == repository), None)
            yield {"repository": repository, "tag": name_tag, "digest": repo_digest or image.digest,
                   "id": image.id, "size": image.size, "created": image.created,
                   "platform": image.platform}, image


def _matches(row: dict[str, Any], image: Image, args: argparse.Namespace) -> bool:
    import fnmatch

    for spec in args.filter or []:
        key, _, value = spec.partition("=")
        if key == "dangling":
            if image.dangling != (value.lower() in ("true", "1")):
                return False
        elif key == "reference":
            name = f"{row['repository']}:{row['tag']}" if row["repository"] else ""
            if not (fnmatch.fnmatch(name, value) or fnmatch.fnmatch(name, f"*/{value}")
                    or fnmatch.fnmatch(row["repository"] or "", value)):
                return False
        else:
            raise UsageError(f"--filter {spec}: unknown filter (supported: dangling, reference)")
    if args.repository:
        want = Reference.parse(args.repository)
        tag_given = ":" in args.repository.rpartition("/")[2]
        if row["repository"] != want.name or (tag_given and row["tag"] != want.tag):
            return False
    return True


def cmd_images(ctx: Context) -> int:
    args = ctx.args
    rows = [row for row, image in _rows(open_store(ctx).images()) if _matches(row, image, args)]
    if args.quiet:
        seen: list[str] = []
        for row in rows:
            ident = row["id"] if args.no_trunc else _short(row["id"])
            if ident not in seen:
                seen.append(ident)
                print(ident)
        return 0
    if ctx.output == "json":
        print_json(rows)
        return 0
    columns: list[tuple[str, Any]] = [
        ("repository", lambda r: r["repository"] or "<none>"), ("tag", lambda r: r["tag"] or "<none>")]
    if args.digests:
        columns.append(("digest", "digest"))
    columns += [("image id", lambda r: _short(r["id"], args.no_trunc)),
                ("created", lambda r: _ago(r["created"])), ("size", lambda r: human_size(r["size"]))]
    print_table(rows, columns)
    return 0


def inspect_image(ctx: Context, name: str) -> dict[str, Any] | None:
    """The inspect document of image ``name``, or None if there is no such image (the top-level
    ``inspect`` then tries other object types)."""
    from engine.errors import NotFoundError

    store = open_store(ctx)
    try:
        image = store.resolve(name)
    except NotFoundError:
        return None
    return store.inspect(image)


def print_inspected(ctx: Context, docs: list[dict[str, Any]]) -> None:
    """Docker prints inspect results as a JSON array; ``-o table`` prints each as key: value lines."""
    if ctx.output == "json":
        print_json(docs)
        return
    for doc in docs:
        print_mapping(_shown_all({k: v for k, v in doc.items() if not isinstance(v, (dict, list))
                                  or k == "Config"}))


def cmd_image_inspect(ctx: Context) -> int:
    from stockade.commands.inspect import inspect_objects

    print_inspected(ctx, inspect_objects(ctx, ctx.args.images, ["image"], "image"))
    return 0


def cmd_history(ctx: Context) -> int:
    args = ctx.args
    store = open_store(ctx)
    rows = store.history(store.resolve(args.image))
    if ctx.output == "json":
        print_json(rows)
        return 0
    if args.quiet:
        print("\n".join(_short(r["layer"], args.no_trunc) if r["layer"] else "<missing>" for r in rows))
        return 0

    def created_by(row: dict[str, Any]) -> str:
        text = _shown(row["created_by"] or "")
        return text if args.no_trunc or len(text) <= 45 else text[:44] + "…"

    print_table(rows, [("layer", lambda r: _short(r["layer"], args.no_trunc) if r["layer"] else "<missing>"),
                       ("created", lambda r: _ago(r["created"])), ("created by", created_by),
                       ("size", lambda r: human_size(r["size"])), ("comment", lambda r: _shown(r["comment"]))])
    return 0


# --- changes -------------------------------------------------------------------------------------

def cmd_tag(ctx: Context) -> int:
    open_store(ctx).tag(ctx.args.source, ctx.args.target)
    return 0


def cmd_rmi(ctx: Context) -> int:
    args = ctx.args
    store = open_store(ctx)
    removed = store.remove(args.images, force=args.force, in_use=images_in_use(ctx))
    for item in removed:
        print(f"{item.action.capitalize()}: {item.what}")
    return 0


def cmd_prune(ctx: Context) -> int:
    args = ctx.args
    if not args.force and sys.stdin.isatty():
        what = "all images without at least one container associated to them" if args.all \
            else "all dangling images"
        answer = input(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    store = open_store(ctx)
    removed, freed = store.prune(all_unused=args.all, in_use=images_in_use(ctx))
    if ctx.output == "json":
        print_json({"removed": [{"action": r.action, "what": r.what} for r in removed],
                    "blobs": freed.blobs, "layers": freed.layers, "reclaimed": freed.bytes})
        return 0
    if removed:
        print("Deleted Images:")
        for item in removed:
            print(f"{item.action}: {item.what}")
    print(f"Total reclaimed space: {human_size(freed.bytes)}")
    return 0


def _open_output(path: str | None) -> tuple[IO[bytes], Callable[[bool], None]]:
    """The destination of ``save``: a file written atomically, or stdout when it is not a terminal."""
    if path is None or path == "-":
        if sys.stdout.isatty():
            raise UsageError("refusing to write an archive to a terminal: use -o FILE or redirect stdout")
        return sys.stdout.buffer, lambda ok: sys.stdout.buffer.flush()
    from engine.atomicfile import temp_name

    final = Path(path)
    tmp = temp_name(final.absolute())
    f = open(tmp, "xb")  # noqa: SIM115 - closed by the finisher

    def finish(ok: bool) -> None:
        if ok:
            f.flush()
            os.fsync(f.fileno())
        f.close()
        if ok:
            os.replace(tmp, final)
        else:
            tmp.unlink(missing_ok=True)
    return f, finish


def cmd_save(ctx: Context) -> int:
    from engine.store.archive import save, selection_names

    store = open_store(ctx)
    selection = []
    for name in ctx.args.images:
        image = store.resolve(name)
        selection.append((image, list(selection_names(image, name))))
    out, finish = _open_output(ctx.args.output_file)
    ok = False
    try:
        save(store, selection, out)
        ok = True
    finally:
        finish(ok)
    return 0


def cmd_load(ctx: Context) -> int:
    from engine.store.archive import load

    store = open_store(ctx)
    path = ctx.args.input
    if path is None or path == "-":
        if sys.stdin.isatty():
            raise UsageError("no archive: give -i FILE or pipe one to stdin")
        images = load(store, sys.stdin.buffer, what="archive on stdin")
    else:
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise StockadeError(f"cannot open {path}: {exc.strerror}") from None
        with f:
            images = load(store, f, what=str(path))
    if ctx.output == "json":
        print_json([{"id": i.id, "digest": i.digest, "tags": list(i.repo_tags)} for i in images])
    elif not ctx.args.quiet:
        for image in images:
            for tag in image.repo_tags or ():
                print(f"Loaded image: {tag}")
            if not image.repo_tags:
                print(f"Loaded image ID: {image.id}")
    return 0


def cmd_import(ctx: Context) -> int:
    from engine.store.importer import import_rootfs

    args = ctx.args
    store = open_store(ctx)
    name = Reference.parse(args.reference) if args.reference else None
    platform = _platform(args.platform)
    options = dict(changes=args.change or [], message=args.message, platform=platform, name=name)
    if args.file == "-":
        image = import_rootfs(store, sys.stdin.buffer, source_name="-", **options)  # type: ignore[arg-type]
    else:
        try:
            f = open(args.file, "rb")
        except OSError as exc:
            raise StockadeError(f"cannot open {args.file}: {exc.strerror}") from None
        with f:
            image = import_rootfs(store, f, source_name=args.file, **options)  # type: ignore[arg-type]
    print(image.id)
    return 0


# --- registration ------------------------------------------------------------------------------------

def _add_pull(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="download an image from a registry")
    p.add_argument("image", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pull (default: this host's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only the digest")
    add_registry_flags(p)
    add_output_flag(p)
    p.set_defaults(func=cmd_pull)


def _add_push(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="upload an image to a registry")
    p.add_argument("image", metavar="NAME[:TAG]")
    p.add_argument("destination", nargs="?", metavar="DESTINATION",
                   help="where to push (default: NAME itself)")
    p.add_argument("--chunk-size", metavar="SIZE", help="upload blobs larger than SIZE in chunks")
    p.add_argument("--digestfile", type=Path, metavar="FILE", help="write the pushed digest to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    add_registry_flags(p)
    add_output_flag(p)
    p.set_defaults(func=cmd_push)


def _add_images(sub: Any, name: str, aliases: list[str]) -> None:
    p = sub.add_parser(name, aliases=aliases, help="list images")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    p.add_argument("-a", "--all", action="store_true", help="accepted for Docker compatibility")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="full IDs")
    p.add_argument("-f", "--filter", action="append", metavar="KEY=VALUE",
                   help="dangling=true|false, reference=PATTERN")
    add_output_flag(p)
    p.set_defaults(func=cmd_images)


def _add_rmi(sub: Any, name: str, aliases: list[str]) -> None:
    p = sub.add_parser(name, aliases=aliases, help="remove images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true",
                   help="untag even if a container uses the image, or it has tags in several repositories")
    p.set_defaults(func=cmd_rmi)


def _add_tag(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="give an image another name")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    p.set_defaults(func=cmd_tag)


def _add_history(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="show how an image was built, layer by layer")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help="only layer digests")
    add_output_flag(p)
    p.set_defaults(func=cmd_history)


def _add_save(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="write images to an OCI image layout archive")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", dest="output_file", metavar="FILE",
                   help="archive file (default: stdout)")
    p.set_defaults(func=cmd_save)


def _add_load(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="load images from an OCI layout or docker save archive")
    p.add_argument("-i", "--input", metavar="FILE", help="archive file (default: stdin)")
    p.add_argument("-q", "--quiet", action="store_true")
    add_output_flag(p)
    p.set_defaults(func=cmd_load)


def _add_import(sub: Any, name: str) -> None:
    p = sub.add_parser(name, help="make an image from a root filesystem tarball")
    p.add_argument("file", metavar="FILE|-")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-c", "--change", action="append", metavar="INSTRUCTION",
                   help="Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, "
                        "STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)")
    p.add_argument("-m", "--message", help="commit message for the image's history")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="platform to record (default: this host's)")
    p.set_defaults(func=cmd_import)


# The top-level verbs and how each is added; the CLI builds only the one it runs (building every
# verb's parser cost ~60 ms, a tenth of pulling a 256 MiB image).
VERBS = {
    "pull": _add_pull, "push": _add_push, "images": lambda sub, verb: _add_images(sub, verb, []),
    "rmi": lambda sub, verb: _add_rmi(sub, verb, []), "tag": _add_tag, "history": _add_history,
    "save": _add_save, "load": _add_load, "import": _add_import,
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for verb, add in VERBS.items():
        add(sub, verb)

    group = sub.add_parser("image", help="manage images (Docker's image subcommands)")
    isub = group.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=type(group))
    group.set_defaults(func=lambda ctx: group.print_help(sys.stderr) or 2)
    _add_images(isub, "ls", ["list"])
    _add_rmi(isub, "rm", ["remove"])
    _add_pull(isub, "pull")
    _add_push(isub, "push")
    _add_tag(isub, "tag")
    _add_history(isub, "history")
    _add_save(isub, "save")
    _add_load(isub, "load")
    _add_import(isub, "import")
    p = isub.add_parser("inspect", help="show images' configuration and manifest as JSON")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_output_flag(p, default="json")
    p.set_defaults(func=cmd_image_inspect)
    p = isub.add_parser("prune", help="remove unused images and reclaim space")
    p.add_argument("-a", "--all", action="store_true",
                   help="every image no container uses, not only dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    add_output_flag(p)
    p.set_defaults(func=cmd_prune)
