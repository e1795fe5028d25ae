"""Where Stockade keeps things, and the TOML configuration that can change it.

Two layouts, as podman and Docker users expect:

* root: store and state under ``/var/lib/stockade``, configuration in ``/etc/stockade``,
  cache under ``/var/cache/stockade``, runtime files under ``/run/stockade``;
* any other user (rootless): the XDG base directories, ``$XDG_DATA_HOME/stockade`` and so on.

Configuration files are read in order, later ones overriding earlier keys: ``/etc/stockade/config.toml``
then ``$XDG_CONFIG_HOME/stockade/config.toml``. ``STOCKADE_CONFIG`` (or ``--config``) names one file
that replaces both. Unknown sections or keys and wrongly typed values are errors naming the file and
the key: a typo must never silently weaken a security setting.

The engine owns this module (rather than the command line) because the audit reads the same effective
configuration the engine runs with.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, Mapping

from engine.errors import ConfigError
from engine.records import MISSING, Field, Record, field, fields

ENV_CONFIG = "STOCKADE_CONFIG"
SYSTEM_CONFIG_DIR = Path("/etc/stockade")
USERNS_SHARED = ".userns-auto"  # in a store root: --userns=auto containers need it traversable


def is_rootless() -> bool:
    """True when Stockade runs without real root, so it must use a user namespace and XDG paths."""
    return os.geteuid() != 0


def _private_dir(path: str) -> bool:
    """True for an absolute path naming a directory this user owns that nobody else may write."""
    if not os.path.isabs(path):
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var, "")
    # The XDG spec says relative values are invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


class Paths(Record, frozen=True):
    """Directories Stockade uses for one user. Every other path is derived from these."""

    root: Path  # images, layers, containers, volumes
    runroot: Path  # runtime files that die with the boot: locks, sockets, pid files
    config_dir: Path  # the user's configuration directory (credentials, certs.d)
    cache: Path  # caches that may be deleted at any time (verification results, compiled filters)
    rootless: bool

    @classmethod
    def default(cls, *, root: str | os.PathLike[str] | None = None,
                runroot: str | os.PathLike[str] | None = None) -> "Paths":
        """The standard layout for the current user; ``root`` moves the store (``--root``).

        When ``--root`` is given without ``--runroot`` the runtime files live under ``<root>/run``,
        so a test or a second instance pointed at another root shares nothing with the default one.
        """
        rootless = is_rootless()
        if rootless:
            data = _xdg("XDG_DATA_HOME", ".local/share") / "stockade"
            config = _xdg("XDG_CONFIG_HOME", ".config") / "stockade"
            cache = _xdg("XDG_CACHE_HOME", ".cache") / "stockade"
            xdg_run = os.environ.get("XDG_RUNTIME_DIR", "")
            # Without a usable XDG_RUNTIME_DIR (su, cron; or one that is missing, or not this user's
            # own 0700 directory as the XDG spec requires, such as /tmp) stay inside the user's own
            # data directory: a predictable name in a shared directory could be made first by
            # another user.
            run = Path(xdg_run) / "stockade" if _private_dir(xdg_run) else data / "run"
        else:
            data = Path("/var/lib/stockade")
            config = SYSTEM_CONFIG_DIR
            cache = Path("/var/cache/stockade")
            run = Path("/run/stockade")
        if root is not None:
            data = Path(root).absolute()
            run = data / "run"
            cache = data / "cache"
        if runroot is not None:
            run = Path(runroot).absolute()
        return cls(root=data, runroot=run, config_dir=config, cache=cache, rootless=rootless)

    def make_root(self) -> None:
        """Create the store's root before anything goes under it, 0700, as podman's and Docker's
        (``/var/lib/docker`` is 0710). Any user can read a container's upper directory path (its id)
        in ``/proc/PID/mountinfo``, and layer directories are named by chain ids anyone can compute
        from a public image: through a root others may traverse, a local user read a container's
        logs, writable layer and volumes, and ran the setuid binaries of image layers and of what a
        container wrote as its root (euid 0 in root's store, the user's uid in a rootless one).
        Containers do not need the traversal: root, or the rootless user's own namespace, mounts
        their files. The exception is root's ``--userns=auto`` (``share_with_userns``). An existing
        root made traversable by an older Stockade is narrowed. A rootless root another user owns
        (``--root`` naming a directory someone else made first, in /tmp) is refused: its owner could
        replace the layers and records under it."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(self.root)
        if self.rootless and st.st_uid != os.geteuid():
            raise ConfigError(f"store root {self.root} belongs to uid {st.st_uid}, not to you: "
                              f"use a directory of your own (--root)")
        if st.st_mode & 0o077 and (self.rootless or not (self.root / USERNS_SHARED).exists()):
            os.chmod(self.root, st.st_mode & 0o700)

    def share_with_userns(self) -> None:
        """Let root's ``--userns=auto`` containers reach the store: their init, an unprivileged host
        uid, mounts their root from it, so the root must be traversable by others (0711, which then
        exposes what ``make_root`` describes to every local user; a marker keeps it so)."""
        (self.root / USERNS_SHARED).touch(mode=0o600)
        if os.stat(self.root).st_mode & 0o011 != 0o011:
            os.chmod(self.root, 0o711)  # nosec B103 # a directory: traversal for the userns, no listing

# --- configuration schema -------------------------------------------------------------------------
# Each section is a frozen record (engine.records); a field's metadata "kind" selects a parser for values that are
# not plain TOML types (sizes such as "16GiB").

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024,
               "m": 1000**2, "mb": 1000**2, "mi": 1024**2, "mib": 1024**2,
               "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
               "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4}


def parse_size(value: str | int) -> int:
    """Parse ``64m``, ``16GiB``, ``512`` into bytes (Docker accepts b, k, m, g as powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"size {value} is negative")
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"invalid size {value!r} (expected a number with an optional unit: 64m, 1GiB)")
    number, unit = m.group(1), (m.group(2) or "").lower()
    # Docker's --memory convention: a bare single-letter unit is binary (64m = 64 MiB).
    if unit in ("k", "m", "g", "t"):
        unit += "i"
    return int(float(number) * _SIZE_UNITS[unit])


class StorageConfig(Record, frozen=True):
    """The image and container store."""

    root: str | None = None  # overrides the default store location
    runroot: str | None = None
    driver: str = "overlay"  # "overlay", or "copy" where overlayfs is unavailable


class RegistriesConfig(Record, frozen=True):
    """How the registry client treats registries."""

    insecure: tuple[str, ...] = ()  # host[:port] allowed over plain HTTP / unverified TLS
    certs_dirs: tuple[str, ...] = ()  # extra certs.d roots searched before the defaults
    timeout: float = 30.0  # seconds per network operation
    retries: int = 4  # attempts after a 5xx or a dropped connection
    # containers/image's default (skopeo, podman): a pull's layers run at once, so a small layer of
    # many files is not left to unpack alone after the large ones.
    max_parallel_downloads: int = 6


class UnpackConfig(Record, frozen=True):
    """Bounds on what one layer may expand into (a decompression bomb must fail, not fill a disk)."""

    max_layer_size: int = field(default=32 * 1024**3, metadata={"kind": "size"})
    max_entries: int = 2_000_000
    max_manifest_size: int = field(default=4 * 1024**2, metadata={"kind": "size"})


class PolicyConfig(Record, frozen=True):
    """The policy applied to ``run`` when ``--policy`` is not given."""

    default: str = "restricted"
    verify_signatures: bool = True


class ContainersConfig(Record, frozen=True):
    """Hardened defaults for containers the engine starts."""

    seccomp_profile: str = "default"
    no_new_privileges: bool = True
    userns: str = "host"
    log_max_size: int = field(default=10 * 1024**2, metadata={"kind": "size"})
    log_max_file: int = 3


class Config(Record, frozen=True):
    """The effective configuration, and the files it came from (for ``info`` and the audit)."""

    storage: StorageConfig = field(default_factory=StorageConfig)
    registries: RegistriesConfig = field(default_factory=RegistriesConfig)
    unpack: UnpackConfig = field(default_factory=UnpackConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    containers: ContainersConfig = field(default_factory=ContainersConfig)
    sources: tuple[str, ...] = ()


_SECTION_TYPES = {"storage": StorageConfig, "registries": RegistriesConfig, "unpack": UnpackConfig,
                  "policy": PolicyConfig, "containers": ContainersConfig}


def _coerce(value: Any, f: Field, where: str) -> Any:
    """Check one TOML value against its field, converting sizes; raise ConfigError naming ``where``."""
    kind = f.metadata.get("kind")
    default = f.default if f.default is not MISSING else None
    try:
        if kind == "size":
            return parse_size(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    expected: type | tuple[type, ...]
    if isinstance(default, bool):
        expected = bool
    elif isinstance(default, float):
        expected = (int, float)
    elif isinstance(default, int):
        expected = int
    elif isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    else:
        expected = str
    if isinstance(value, bool) and expected is not bool:
        raise ConfigError(f"{where}: expected {_type_name(expected)}, got a boolean")
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {_type_name(expected)}, got {value!r}")
    return float(value) if expected == (int, float) else value


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", str: "a string"}
    return "a number" if isinstance(t, tuple) else names.get(t, t.__name__)


def _merge(base: dict[str, dict[str, Any]], doc: Mapping[str, Any], path: Path) -> None:
    for section, table in doc.items():
        cls = _SECTION_TYPES.get(section)
        if cls is None:
            raise ConfigError(f"{path}: unknown section [{section}] "
                              f"(known: {', '.join(sorted(_SECTION_TYPES))})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        known = {f.name: f for f in fields(cls)}
        for key, value in table.items():
            f = known.get(key)
            if f is None:
                raise ConfigError(f"{path}: unknown key {section}.{key} "
                                  f"(known: {', '.join(sorted(known))})")
            base.setdefault(section, {})[key] = _coerce(value, f, f"{path}: {section}.{key}")


# Blank lines and comments only, as TOML 1.0 allows them (no control character but tab in a comment).
_NO_KEYS = r"(?:[ \t]*(?:#[^\x00-\x08\x0a-\x1f\x7f]*)?\r?\n)*[ \t]*(?:#[^\x00-\x08\x0a-\x1f\x7f]*)?"


def _parse_toml(raw: bytes, path: Path) -> dict[str, Any]:
    """The document in ``raw``. A file of only blank lines and comments is the empty document
    without loading ``tomllib`` (with ``datetime``, a twentieth of a warm ``run``)."""
    try:
        text = raw.decode("utf-8")
        if re.fullmatch(_NO_KEYS, text):
            return {}
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def config_files(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """The configuration files that apply, in override order (missing files are skipped later)."""
    chosen = explicit or os.environ.get(ENV_CONFIG)
    if chosen:
        return [Path(chosen)]
    user = _xdg("XDG_CONFIG_HOME", ".config") / "stockade" / "config.toml"
    return [SYSTEM_CONFIG_DIR / "config.toml", user]


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the configuration; an explicitly named file must exist."""
    merged: dict[str, dict[str, Any]] = {}
    sources: list[str] = []
    named = explicit or os.environ.get(ENV_CONFIG)
    for path in config_files(explicit):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            if named:
                raise ConfigError(f"configuration file {path} does not exist") from None
            continue
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
        _merge(merged, _parse_toml(raw, path), path)
        sources.append(str(path))
    sections = {name: _SECTION_TYPES[name](**merged.get(name, {})) for name in _SECTION_TYPES}
    return Config(**sections, sources=tuple(sources))
