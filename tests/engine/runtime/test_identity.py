"""-u resolved in the image's own /etc/passwd and /etc/group, with Docker's rules."""

from __future__ import annotations

import pytest

from engine.runtime.identity import IdentityError, resolve

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n# comment\nbroken\n"
GROUP = "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\nstaff:x:50:app\n"


def test_name_gets_primary_and_supplementary_groups() -> None:
    who = resolve("app", [], PASSWD, GROUP)
    assert (who.uid, who.gid, who.groups, who.home) == (1000, 1000, [10, 50], "/home/app")


def test_numeric_uid_unknown_to_the_image() -> None:
    who = resolve("4242", [], PASSWD, GROUP)
    assert (who.uid, who.gid, who.groups, who.home) == (4242, 0, [], "/")


def test_explicit_group_replaces_supplementary() -> None:
    who = resolve("app:wheel", [], PASSWD, GROUP)
    assert (who.gid, who.groups) == (10, [])
    assert resolve("1000:77", [], PASSWD, GROUP).gid == 77


def test_group_add() -> None:
    assert resolve("root", ["staff", "99"], PASSWD, GROUP).groups == [50, 99]


@pytest.mark.parametrize("user, group_add, message", [
    ("ghost", [], "unable to find user ghost"),
    ("app:nogroup", [], "unable to find group nogroup"),
    ("app", ["nogroup"], "unable to find group nogroup"),
    (":0", [], "empty user name"),
    ("99999999999", [], "out of range"),
])
def test_errors(user: str, group_add: list[str], message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        resolve(user, group_add, PASSWD, GROUP)


def test_empty_files_mean_only_numeric_ids_work() -> None:
    assert resolve("0", [], "", "").uid == 0
    with pytest.raises(IdentityError):
        resolve("app", [], "", "")
