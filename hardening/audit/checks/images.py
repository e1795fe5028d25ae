"""Image checks: the OCI config (user, healthcheck, env, labels, history) and the layers' files."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from hardening.audit.model import Evidence, Skip, Verdict, failed, passed
from hardening.audit.registry import implements
from hardening.audit.targets import ImageRecord, LayerFile

SECRET_NAME = re.compile(r"(PASSW(OR)?D|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL)",
                         re.IGNORECASE)
# A name ending like this points at a secret (a file, a path) rather than holding one.
REFERENCE_SUFFIXES = ("_FILE", "_PATH", "_DIR")


def _cfg(image: ImageRecord) -> Mapping[str, Any]:
    return image.config.get("config") or {}


def _history(image: ImageRecord) -> list[str]:
    return [str(h.get("created_by", "")) for h in image.config.get("history") or []]


def _list(items: Iterable[str], limit: int = 8) -> str:
    items = list(items)
    return ", ".join(items[:limit]) + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _loc(image: ImageRecord, what: str = "config") -> str:
    return f"stockade/image/{image.name}/{what}"


def _layer_hits(image: ImageRecord, predicate: Any, message: str, expected: str) -> Verdict:
    """FAIL listing the layer files ``predicate`` flags, PASS when none does."""
    hits: list[LayerFile] = [f for f in image.files() if predicate(f)]
    if hits:
        return failed(f"{message}: {_list(f'{f.path} (layer {f.layer})' for f in hits)}",
                      *(Evidence("layer", f.path, f"{f.mode:04o} in layer {f.layer}", expected)
                        for f in hits[:20]), location=_loc(image, "layers"))
    return passed(f"no layer holds {expected.split(' ', 1)[-1]}",
                  Evidence("layer", "*", "none found", expected))


def _history_hits(image: ImageRecord, predicate: Any, message: str, observed: str,
                  expected: str, clean: str) -> Verdict:
    """FAIL naming the build steps whose ``created_by`` matches ``predicate``, PASS when none does."""
    steps = [i for i, line in enumerate(_history(image)) if predicate(line)]
    if steps:
        return failed(f"{message} (steps {_list(map(str, steps))})",
                      *(Evidence("image-config", f"/history/{i}/created_by", observed, expected)
                        for i in steps), location=_loc(image, "history"))
    return passed(clean)


@implements("IMG-001")
def non_root_user(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    user = str(_cfg(image).get("User") or "")
    name = user.split(":")[0]
    ev = Evidence("image-config", "/config/User", user or "(unset)", "a non-root user")
    if name in ("", "root", "0"):
        return failed(f"the image runs as {'root (USER unset)' if not user else user}", ev,
                      location=_loc(image))
    return passed(f"the image runs as {user}", ev)


@implements("IMG-002")
def healthcheck(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    test = (_cfg(image).get("Healthcheck") or {}).get("Test") or []
    ev = Evidence("image-config", "/config/Healthcheck/Test", str(test) if test else "(unset)",
                  "a HEALTHCHECK command")
    if not test or test[0] == "NONE":
        return failed("the image has no HEALTHCHECK", ev, location=_loc(image))
    return passed("the image declares a HEALTHCHECK", ev)


@implements("IMG-003")
def setuid_files(_view: Any, image: ImageRecord, params: Mapping[str, Any]) -> Verdict:
    allow = set(params.get("allow", ()))
    return _layer_hits(image, lambda f: f.kind == "file" and f.mode & 0o6000 and f.path not in allow,
                       "setuid or setgid files", "no setuid/setgid files")


def _secret_pairs(pairs: Iterable[tuple[str, str]], accept: set[str]) -> list[str]:
    return [k for k, v in pairs if v and SECRET_NAME.search(k) and k.upper() not in accept
            and not k.upper().endswith(REFERENCE_SUFFIXES)]


@implements("IMG-004")
def env_secrets(_view: Any, image: ImageRecord, params: Mapping[str, Any]) -> Verdict:
    env = [e.partition("=") for e in _cfg(image).get("Env") or []]
    keys = _secret_pairs(((k, v) for k, _, v in env), set(params.get("accept", ())))
    if keys:
        return failed(f"ENV sets secret-looking variables: {_list(keys)}",
                      *(Evidence("image-config", f"/config/Env/{k}", "set (value not shown)",
                                 "no secrets in ENV") for k in keys), location=_loc(image))
    return passed("no secret-looking variable in ENV")


@implements("IMG-016")
def label_secrets(_view: Any, image: ImageRecord, params: Mapping[str, Any]) -> Verdict:
    labels = _cfg(image).get("Labels") or {}
    keys = _secret_pairs(((str(k), str(v)) for k, v in labels.items()), set(params.get("accept", ())))
    if keys:
        return failed(f"labels hold secret-looking values: {_list(keys)}",
                      *(Evidence("image-config", f"/config/Labels/{k}", "set (value not shown)",
                                 "no secrets in labels") for k in keys), location=_loc(image))
    return passed("no secret-looking label")


_ASSIGN = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\S+)")


@implements("IMG-017")
def history_secrets(_view: Any, image: ImageRecord, params: Mapping[str, Any]) -> Verdict:
    accept = set(params.get("accept", ()))
    hits = []
    for i, line in enumerate(_history(image)):
        keys = _secret_pairs(_ASSIGN.findall(line), accept)
        hits += [(i, k) for k in keys]
    if hits:
        return failed("build history records secret-looking values: "
                      + _list(f"{k} (step {i})" for i, k in hits),
                      *(Evidence("image-config", f"/history/{i}/created_by", f"{k}=… (not shown)",
                                 "build secrets passed with --secret") for i, k in hits),
                      location=_loc(image, "history"))
    return passed("no secret-looking assignment in the build history")


SECRET_FILES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".git-credentials", ".npmrc",
                ".pypirc", ".netrc", ".env", ".htpasswd"}
SECRET_SUFFIXES = (".key", ".p12", ".pfx", ".keystore", ".jks")


def _secret_file(f: LayerFile, allow_prefixes: tuple[str, ...]) -> bool:
    if f.kind != "file" or f.path.startswith(allow_prefixes):
        return False
    base = f.path.rsplit("/", 1)[-1]
    return (base in SECRET_FILES or base.endswith(SECRET_SUFFIXES)
            or f.path.endswith(("/.aws/credentials", "/.docker/config.json", "/.kube/config")))


@implements("IMG-005")
def secret_files(_view: Any, image: ImageRecord, params: Mapping[str, Any]) -> Verdict:
    allow = tuple(params.get("allow_prefixes", ()))
    return _layer_hits(image, lambda f: _secret_file(f, allow), "key or credential files in layers",
                       "no key or credential files")


_ADD = re.compile(r"(^|#\(nop\)\s+|\s)ADD\s", re.IGNORECASE)
_URL = re.compile(r"\bADD\s+(--\S+\s+)*(https?|ftp)://", re.IGNORECASE)


@implements("IMG-006")
def add_instruction(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    return _history_hits(image, lambda line: _ADD.search(line) and not _URL.search(line),
                         "the image was built with ADD", "ADD", "COPY",
                         "no ADD instruction in the build history")


@implements("IMG-007")
def add_url(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    return _history_hits(image, _URL.search, "ADD fetched remote URLs at build time", "ADD <url>",
                         "a download whose checksum is verified",
                         "no ADD of a remote URL in the build history")


def _pinned(reference: str) -> bool:
    """True for a digest or a tag other than ``latest`` (``repo`` alone means ``latest``)."""
    if "@sha256:" in reference:
        return True
    last = reference.rsplit("/", 1)[-1]
    return ":" in last and last.rsplit(":", 1)[1] != "latest"


@implements("IMG-008")
def latest_only(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    tags = list(image.tags)
    if not tags:
        raise Skip("the image has no tag")
    pinned = [t for t in tags if _pinned(t)]
    ev = Evidence("image-config", "tags", ", ".join(tags), "a version tag or a digest")
    if pinned:
        return passed(f"the image is named by {pinned[0]}", ev)
    return failed("the image is known only as 'latest'", ev, location=_loc(image))


@implements("IMG-009")
def signature(view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    if view.signatures is None:
        raise Skip("the policy requires no signatures (audit with --policy FILE whose signatures "
                   "section names the image's signers)")
    verdict = view.signatures.verify(image)
    ev = Evidence("signature", image.digest or image.id, verdict.detail, "a signature the policy accepts")
    if verdict.verified:
        return passed(f"signature verified: {verdict.detail}", ev)
    return failed(f"no valid signature under the policy: {verdict.detail}", ev, location=_loc(image))


@implements("IMG-010")
def labels(_view: Any, image: ImageRecord, params: Mapping[str, Any]) -> Verdict:
    present = _cfg(image).get("Labels") or {}
    missing = [k for k in params["required"] if not present.get(k)]
    ev = Evidence("image-config", "/config/Labels", _list(sorted(present)) or "(none)",
                  ", ".join(params["required"]))
    if missing:
        return failed(f"provenance labels missing: {', '.join(missing)}", ev, location=_loc(image))
    return passed("provenance labels present", ev)


@implements("IMG-011")
def accounts(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    passwd = image.read_file("/etc/passwd")
    if passwd is None:
        raise Skip("the image has no /etc/passwd")
    roots = [f[0] for line in passwd.decode("utf-8", "replace").splitlines()
             if len(f := line.split(":")) >= 3 and f[2] == "0"]
    shadow = image.read_file("/etc/shadow") or b""
    empty = [f[0] for line in shadow.decode("utf-8", "replace").splitlines()
             if len(f := line.split(":")) >= 2 and f[1] == ""]
    problems = ([f"uid 0 shared by {', '.join(roots)}"] if len(roots) > 1 else []) + \
               ([f"empty password for {', '.join(empty)}"] if empty else [])
    if problems:
        return failed("; ".join(problems), Evidence("layer", "/etc/passwd, /etc/shadow",
                                                    "; ".join(problems), "one uid 0, no empty passwords"),
                      location=_loc(image, "layers"))
    return passed("one uid 0 account and no empty passwords")


@implements("file_present")
def file_present(_view: Any, image: ImageRecord, params: Mapping[str, Any]) -> Verdict:
    """The image must not ship any of ``params["paths"]`` (sudo, sshd …)."""
    paths = set(params["paths"])
    return _layer_hits(image, lambda f: f.path in paths and f.kind in ("file", "link"),
                       params["message"], "none of " + ", ".join(sorted(paths)))


_CACHE_DIRS = ("/var/lib/apt/lists/", "/var/cache/apt/archives/", "/var/cache/apk/",
               "/var/cache/yum/", "/var/cache/dnf/", "/root/.cache/pip/")


@implements("IMG-013")
def package_caches(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    def cached(f: LayerFile) -> bool:
        base = f.path.rsplit("/", 1)[-1]
        return (f.kind == "file" and f.path.startswith(_CACHE_DIRS) and base not in ("lock", "partial")
                and "/partial/" not in f.path)
    return _layer_hits(image, cached, "package manager caches left in layers", "no package caches")


@implements("IMG-014")
def world_writable(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    return _layer_hits(image, lambda f: f.kind == "dir" and f.mode & 0o002 and not f.mode & 0o1000,
                       "world-writable directories without the sticky bit",
                       "no world-writable directory without the sticky bit")


_UPDATE = re.compile(r"\b(apt-get|apt|yum|dnf|apk|zypper)\s+(update|makecache)\b")
_INSTALL = re.compile(r"\b(install|upgrade|add)\b")


@implements("IMG-015")
def update_alone(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    return _history_hits(image, lambda line: _UPDATE.search(line) and not _INSTALL.search(line),
                         "package index updated in a step of its own", "update without install",
                         "update && install in one RUN",
                         "no package index update stands alone in the build history")


def parse_time(text: str) -> datetime:
    # Go writes nanoseconds; Python's parser takes at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@implements("IMG-019")
def image_age(view: Any, image: ImageRecord, params: Mapping[str, Any]) -> Verdict:
    created = image.config.get("created")
    if not created:
        raise Skip("the image config has no creation time")
    try:
        when = parse_time(str(created))
    except ValueError:
        raise Skip(f"the image's creation time {created!r} is not a timestamp") from None
    days = (view.now - when).days
    ev = Evidence("image-config", "/created", str(created), f"within {params['max_days']} days")
    if days > params["max_days"]:
        return failed(f"the image was built {days} days ago", ev, location=_loc(image))
    return passed(f"the image was built {max(days, 0)} days ago", ev)


@implements("IMG-020")
def vcs_metadata(_view: Any, image: ImageRecord, _p: Mapping[str, Any]) -> Verdict:
    marks = ("/.git/", "/.svn/", "/.hg/")
    return _layer_hits(image, lambda f: any(m in f.path + "/" for m in marks),
                       "version-control metadata in layers", "no .git, .svn or .hg directories")
