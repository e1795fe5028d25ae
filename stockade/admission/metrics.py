"""Prometheus metrics in the text exposition format (version 0.0.4), written here.

The webhook needs three kinds of series (counters with labels, one latency histogram, a gauge or
two); the format is a few lines of text per series, so a client library would be a dependency for
very little. Every update takes one lock per family: a decision costs a handful of dictionary
updates, far below the cost of the TLS record that carried it.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from typing import Iterable, TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. The API server gives a webhook 10 s by default; a cached decision takes about a
# millisecond and a verification against a registry tens to hundreds of milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Family(ABC):
    kind = ""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, labels
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        try:
            if len(labels) == len(self.label_names):
                return tuple([str(labels[n]) for n in self.label_names])
        except KeyError:
            pass
        raise ValueError(f"{self.name} takes labels {self.label_names}, got {tuple(labels)}")

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    @abstractmethod
    def lines(self) -> list[str]:
        """The family's samples, one exposition line each."""


class Counter(_Family):
    """A monotonically increasing count per label combination."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = (),
                 initial: Iterable[dict[str, str]] = ()) -> None:
        super().__init__(name, help_text, labels)
        # Series that exist from the start, so rate() works before the first event.
        self._values: dict[tuple[str, ...], float] = {self._key(ls): 0.0 for ls in initial}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]


class Gauge(Counter):
    """A value that goes up and down (in-flight requests, build information)."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value


class Histogram(_Family):
    """Observations counted into cumulative ``le`` buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text)
        self.bounds = tuple(sorted(buckets))
        self._counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self._sum = 0.0

    def observe(self, value: float) -> None:
        index = len(self.bounds)
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                index = i
                break
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self._counts)

    def lines(self) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, running = [], 0
        for bound, count in zip((*self.bounds, math.inf), counts):
            running += count
            out.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {running}')
        out += [f"{self.name}_sum {_number(total)}", f"{self.name}_count {running}"]
        return out


F = TypeVar("F", bound=_Family)


class MetricsRegistry:
    """The families one server exposes, rendered in registration order."""

    def __init__(self) -> None:
        self._families: list[_Family] = []

    def add(self, family: F) -> F:
        self._families.append(family)
        return family

    def render(self) -> bytes:
        lines: list[str] = []
        for family in self._families:
            lines += family.header() + family.lines()
        return ("\n".join(lines) + "\n").encode()
