"""Operations checks: image and container sprawl in the engine's store."""

from __future__ import annotations

from typing import Any, Mapping

from hardening.audit.checks.images import parse_time
from hardening.audit.model import Evidence, Skip, Verdict, failed, passed
from hardening.audit.registry import implements
from hardening.audit.targets import container_name


@implements("OPS-001")
def unused_images(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    images = view.images.images()
    if not images:
        raise Skip("the store holds no images")
    used = {str(c.get("Image", "")) for c in view.containers.containers()}
    unused = [i.name for i in images if i.id not in used and (i.digest or "") not in used]
    share = len(unused) / len(images)
    ev = Evidence("store", "images", f"{len(unused)} of {len(images)} unused",
                  f"at most {params['max_unused_share']:.0%} unused")
    if share > params["max_unused_share"]:
        return failed(f"{len(unused)} of {len(images)} images are used by no container", ev)
    return passed(f"{len(images) - len(unused)} of {len(images)} images are in use", ev)


@implements("OPS-002")
def stopped_containers(view: Any, _target: Any, params: Mapping[str, Any]) -> Verdict:
    docs = view.containers.containers()
    if not docs:
        raise Skip("there are no containers")
    old = []
    for doc in docs:
        state = doc.get("State") or {}
        finished = state.get("FinishedAt")
        if state.get("Running") or not finished or str(finished).startswith("0001-"):
            continue
        try:
            age = (view.now - parse_time(str(finished))).days
        except ValueError:
            continue
        if age > params["max_days"]:
            old.append(f"{container_name(doc)} ({age} days)")
    ev = Evidence("inspect", "/State/FinishedAt", f"{len(old)} stopped long ago",
                  f"none stopped more than {params['max_days']} days ago")
    if old:
        return failed(f"containers stopped long ago: {', '.join(old[:10])}", ev)
    return passed(f"no container has been stopped more than {params['max_days']} days", ev)
