"""Which extended attributes of a layer entry are applied, dropped or refused, and why.

A layer is untrusted, and some xattr namespaces are not data but instructions to the host kernel:

* ``trusted.overlay.*`` and ``user.overlay.*`` (refused): overlayfs reads them from its layers
  (``trusted.*`` on a root mount, ``user.*`` on a rootless ``userxattr`` mount) as whiteouts, opaque
  markers, redirects to other paths and metacopy pointers. A layer carrying them would steer the
  overlay mount itself, so the whole layer is refused rather than silently changed.
* ``trusted.*`` otherwise (dropped): the root-only namespace of host services; nothing in an image
  has a claim on it.
* ``security.selinux``, ``security.ima``, ``security.evm``, ``security.SMACK64*`` and any other
  ``security.*`` except capabilities (dropped): labels and signatures that belong to the host that
  built the image; the runtime labels the container's files itself.
* ``security.capability`` (applied when privileged, dropped otherwise): file capabilities such as
  ``ping``'s ``cap_net_raw`` are part of what an image means, and the container's bounding set still
  caps them; an unprivileged user cannot set them at all. The audit reports such files.
* ``user.*`` (applied) and ``system.posix_acl_access`` / ``system.posix_acl_default`` (applied):
  ordinary data and permissions.

Only regular files and directories get xattrs: the kernel refuses ``user.*`` on symlinks and
special files, so on those the attributes are checked (an overlay one still refuses the layer) and
then dropped.
"""

from __future__ import annotations

from typing import Iterator, Mapping

from engine.layers.model import Refused

_STEERING = ("trusted.overlay.", "user.overlay.")
_ACLS = ("system.posix_acl_access", "system.posix_acl_default")


def allowed_xattrs(xattrs: Mapping[str, bytes], *, privileged: bool) -> Iterator[tuple[str, bytes]]:
    """The (name, value) pairs to set on an entry; Refused for an overlay-steering attribute."""
    for name, value in xattrs.items():
        if not name or "\0" in name:
            raise Refused(f"carries an xattr with an invalid name {name!r}")
        if name.startswith(_STEERING):
            raise Refused(f"carries the overlayfs attribute {name}, which would steer the overlay "
                          "mount; refused")
        if name.startswith("user.") or name in _ACLS:
            yield name, value
        elif name == "security.capability" and privileged:
            yield name, value


def check_xattrs(xattrs: Mapping[str, bytes]) -> None:
    """Refuse an entry whose attributes would steer overlayfs, even where none will be set."""
    for _ in allowed_xattrs(xattrs, privileged=True):
        pass
