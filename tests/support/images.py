"""Fixture images made with independent tools (umoci, busybox-static), never with Stockade itself.

The busybox image mirrors ../shared/notes/scripts/make-busybox-image.sh: /bin/busybox with its applet
links, an ``app`` user (1000) and ``nobody``, config user 1000:1000. It is built in an OCI image
layout, from which tests push it with skopeo or read it directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 # fixture tools run with argument lists
from pathlib import Path

BUSYBOX = "/bin/busybox"
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout  # nosec B603


def populate_busybox_rootfs(rootfs: Path) -> None:
    """Lay out a minimal busybox root filesystem at ``rootfs``."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root",
              "home/app", "var", "run"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    for applet in _run(str(rootfs / "bin/busybox"), "--list-full").split():
        target = rootfs / applet
        if not target.exists() and not target.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to("/bin/busybox")
    (rootfs / "etc/passwd").write_text(PASSWD)
    (rootfs / "etc/group").write_text(GROUP)
    os.chown(rootfs / "home/app", 1000, 1000)


def make_busybox_layout(workdir: Path, tag: str = "busybox") -> Path:
    """Build an OCI image layout at ``workdir/oci`` holding the busybox image under ``tag``."""
    layout = workdir / "oci"
    bundle = workdir / "bundle"
    if not layout.exists():
        _run("umoci", "init", "--layout", str(layout))
    _run("umoci", "new", "--image", f"{layout}:{tag}")
    _run("umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle))
    populate_busybox_rootfs(bundle / "rootfs")
    _run("umoci", "repack", "--image", f"{layout}:{tag}", str(bundle))
    _run("umoci", "config", "--image", f"{layout}:{tag}", "--config.user=1000:1000",
         "--config.workingdir=/home/app", "--config.cmd=/bin/sh",
         "--config.env=PATH=/usr/sbin:/usr/bin:/sbin:/bin", "--os", "linux", "--architecture", "amd64")
    _run("umoci", "gc", "--layout", str(layout))
    shutil.rmtree(bundle)
    return layout


def skopeo_push(layout: Path, tag: str, dest: str, *, tls_verify: bool = False,
                creds: tuple[str, str] | None = None, cert_dir: Path | None = None) -> str:
    """Push ``layout:tag`` to ``docker://dest`` with skopeo; return the manifest digest skopeo wrote."""
    digest_file = layout.parent / f"{tag}.digest"
    args = ["skopeo", "copy", "-q", f"--dest-tls-verify={'true' if tls_verify else 'false'}",
            "--digestfile", str(digest_file)]
    if creds:
        args += ["--dest-creds", f"{creds[0]}:{creds[1]}"]
    if cert_dir:
        args += ["--dest-cert-dir", str(cert_dir)]
    _run(*args, f"oci:{layout}:{tag}", f"docker://{dest}")
    return digest_file.read_text().strip()
