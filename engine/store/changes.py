"""``--change`` instructions for ``import``: the Dockerfile subset ``docker import`` accepts.

``CMD``, ``ENTRYPOINT``, ``ENV``, ``EXPOSE``, ``LABEL``, ``ONBUILD``, ``STOPSIGNAL``, ``USER``,
``VOLUME`` and ``WORKDIR``, with Dockerfile syntax: JSON (exec) or shell form for ``CMD`` and
``ENTRYPOINT``, ``key=value`` pairs (quoted as a shell would) or the legacy ``ENV key value`` form,
``EXPOSE 80 53/udp 8000-8002``. Each instruction updates the image config's ``config`` object.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import signal
from typing import Any, Callable, Sequence

from engine.errors import StockadeError


class ChangeError(StockadeError):
    """A ``--change`` instruction is unknown or malformed."""


def _json_list(value: str) -> list[str] | None:
    """The exec form ``["a", "b"]``, or None when ``value`` is not a JSON array (shell form)."""
    if not value.startswith("["):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
        return parsed
    return None


def _command(value: str) -> list[str]:
    return _json_list(value) or ["/bin/sh", "-c", value]


def _pairs(instruction: str, value: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ChangeError(f"{instruction} {value}: {exc}") from None
    if words and all("=" in w for w in words):
        pairs = [tuple(w.split("=", 1)) for w in words]
    elif instruction == "ENV" and len(words) >= 2 and "=" not in words[0]:
        pairs = [(words[0], value.split(None, 1)[1])]  # legacy ENV key value-with-spaces
    else:
        raise ChangeError(f"{instruction} {value}: expected key=value pairs")
    for key, _ in pairs:
        if not key:
            raise ChangeError(f"{instruction} {value}: a key is empty")
    return pairs  # type: ignore[return-value]


def _set_env(cfg: dict[str, Any], value: str) -> None:
    env = list(cfg.get("Env") or [])
    for key, val in _pairs("ENV", value):
        env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={val}"]
    cfg["Env"] = env


def _set_labels(cfg: dict[str, Any], value: str) -> None:
    labels = dict(cfg.get("Labels") or {})
    labels.update(_pairs("LABEL", value))
    cfg["Labels"] = labels


def _expose(cfg: dict[str, Any], value: str) -> None:
    ports = dict(cfg.get("ExposedPorts") or {})
    for spec in value.split():
        number, _, proto = spec.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise ChangeError(f"EXPOSE {spec}: protocol must be tcp, udp or sctp")
        low, _, high = number.partition("-")
        if not (low.isascii() and low.isdigit()) or (high and not (high.isascii() and high.isdigit())):
            raise ChangeError(f"EXPOSE {spec}: not a port or port range")
        first, last = int(low), int(high or low)
        if not 0 < first <= last < 65536:
            raise ChangeError(f"EXPOSE {spec}: ports must be 1-65535")
        for port in range(first, last + 1):
            ports[f"{port}/{proto}"] = {}
    cfg["ExposedPorts"] = ports


def _volume(cfg: dict[str, Any], value: str) -> None:
    volumes = dict(cfg.get("Volumes") or {})
    for path in _json_list(value) or value.split():
        if not path:
            raise ChangeError(f"VOLUME {value}: empty path")
        volumes[path] = {}
    cfg["Volumes"] = volumes


def _workdir(cfg: dict[str, Any], value: str) -> None:
    cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cfg.get("WorkingDir") or "/", value))


def _stopsignal(cfg: dict[str, Any], value: str) -> None:
    name = value.upper()
    if not (value.isascii() and value.isdigit() and 0 < int(value) < 65) and \
            not hasattr(signal.Signals, name if name.startswith("SIG") else f"SIG{name}") \
            and not name.startswith("SIGRTM"):
        raise ChangeError(f"STOPSIGNAL {value}: not a signal name or number")
    cfg["StopSignal"] = value


def _onbuild(cfg: dict[str, Any], value: str) -> None:
    cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [value]


_HANDLERS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "CMD": lambda cfg, v: cfg.__setitem__("Cmd", _command(v)),
    "ENTRYPOINT": lambda cfg, v: cfg.__setitem__("Entrypoint", _command(v)),
    "ENV": _set_env,
    "EXPOSE": _expose,
    "LABEL": _set_labels,
    "ONBUILD": _onbuild,
    "STOPSIGNAL": _stopsignal,
    "USER": lambda cfg, v: cfg.__setitem__("User", v),
    "VOLUME": _volume,
    "WORKDIR": _workdir,
}


def apply_changes(config: dict[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    """Return ``config`` (an image config's ``config`` object) with ``changes`` applied in order."""
    cfg = dict(config)
    for change in changes:
        instruction, _, value = change.strip().partition(" ")
        value = value.strip()
        handler = _HANDLERS.get(instruction.upper())
        if handler is None:
            raise ChangeError(f"--change {change!r}: {instruction or 'an empty instruction'} is not "
                              f"allowed (allowed: {', '.join(sorted(_HANDLERS))})")
        if not value:
            raise ChangeError(f"--change {change!r}: {instruction.upper()} needs a value")
        handler(cfg, value)
    return cfg
