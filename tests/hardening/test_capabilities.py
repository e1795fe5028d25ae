"""Docker's capability rules: the default 14, ALL, add/drop, unknown names refused."""

from __future__ import annotations

import pytest

from engine.runtime.capabilities import NAMES, CapabilityError, mask
from hardening.capabilities import DEFAULT, normalized, resolve


def test_default_set_is_dockers() -> None:
    assert resolve([], []) == [n for n in NAMES if n in DEFAULT]
    assert mask(list(DEFAULT)) == 0xA80425FB  # capsh --decode=a80425fb: Docker's 14


def test_add_and_drop() -> None:
    caps = resolve(["net_admin"], ["CAP_MKNOD", "NET_RAW"])
    assert "CAP_NET_ADMIN" in caps and "CAP_MKNOD" not in caps and "CAP_NET_RAW" not in caps


def test_drop_all_then_add() -> None:
    assert resolve(["NET_BIND_SERVICE"], ["ALL"]) == ["CAP_NET_BIND_SERVICE"]
    assert resolve([], ["all"]) == []


def test_add_all_then_drop() -> None:
    caps = resolve(["ALL"], ["SYS_ADMIN"])
    assert "CAP_SYS_ADMIN" not in caps and len(caps) == len(NAMES) - 1


def test_add_wins_over_drop() -> None:
    assert "CAP_CHOWN" in resolve(["CHOWN"], ["CHOWN"])


def test_privileged_gets_everything() -> None:
    assert resolve([], [], privileged=True) == list(NAMES)


def test_unknown_capability() -> None:
    with pytest.raises(CapabilityError, match="unknown capability 'CAP_FLY'"):
        resolve(["CAP_FLY"], [])


def test_normalized_names() -> None:
    assert normalized(["all", "net_admin"]) == ["ALL", "CAP_NET_ADMIN"]
