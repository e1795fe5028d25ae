"""A spec survives its JSON form unchanged (start and exec read back what create wrote)."""

from __future__ import annotations

from engine.spec import CapabilitySets, IDMapping, Mount, Process, Resources, Rlimit, Root, Spec


def test_round_trip() -> None:
    spec = Spec(process=Process(args=["sh", "-c", "x"], env=["A=1"], user="app:app", group_add=["10"],
                                capabilities=CapabilitySets(bounding=["CAP_KILL"], ambient=["CAP_KILL"]),
                                rlimits=[Rlimit("RLIMIT_NOFILE", 10, 20)], init=True),
                root=Root(layers=["/a", "/b"], upper="/u", work="/w", readonly=True),
                mounts=[Mount("/d", "bind", "/s", ["ro"])], uid_mappings=[IDMapping(0, 1000, 1)],
                resources=Resources(memory=1, pids=2), seccomp_bpf="/f.bpf", etc_files={"/etc/hosts": "/h"})
    assert Spec.from_json(spec.to_json()) == spec
    assert spec.user_namespace is True
