"""The hardening every container gets unless a flag (or, later, the policy) says otherwise.

These are values, handed to the engine as plain data by the run pipeline:

* capabilities: Docker's default set (``capabilities.DEFAULT``), changed by ``--cap-add/--cap-drop``;
* seccomp: Docker's default profile (``[containers] seccomp_profile``), compiled and cached;
* no_new_privs: on (``[containers] no_new_privileges``), so setuid binaries and file capabilities
  cannot raise privileges inside the container; ``--security-opt no-new-privileges=false`` turns it
  off;
* the paths runc masks (read as empty) and makes read-only inside ``/proc`` and ``/sys``, which
  otherwise leak host information (``/proc/kcore``, ``/proc/keys``, ``/proc/timer_list``, …) or
  allow changing the host (``/proc/sysrq-trigger``, ``/proc/sys``);
* ``--privileged`` turns all of this off (every capability, no seccomp, no masked paths): it exists
  for parity with Docker and the policy refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import ContainersConfig
from hardening.capabilities import resolve

MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass(frozen=True)
class Hardening:
    """What one container gets, decided from the defaults and its flags."""

    capabilities: list[str]
    no_new_privileges: bool
    seccomp_profile: str | None  # "default", a file, or None for unconfined
    masked_paths: list[str]
    readonly_paths: list[str]


def decide(config: ContainersConfig, *, cap_add: list[str], cap_drop: list[str], privileged: bool,
           seccomp: str | None, no_new_privileges: bool | None) -> Hardening:
    """Combine the configured defaults with a container's flags (``None``: not given)."""
    profile = seccomp if seccomp is not None else config.seccomp_profile
    if privileged or profile == "unconfined":
        profile = None
    return Hardening(
        capabilities=resolve(cap_add, cap_drop, privileged=privileged),
        no_new_privileges=config.no_new_privileges if no_new_privileges is None else no_new_privileges,
        seccomp_profile=profile,
        masked_paths=[] if privileged else list(MASKED_PATHS),
        readonly_paths=[] if privileged else list(READONLY_PATHS),
    )
