"""``stockade-runtime``: Stockade's engine behind the runc command line, for containerd, conmon and podman.

A caller hands over an OCI bundle (``config.json`` and a root filesystem it prepared) and drives the
container through runc's verbs: ``create`` (everything set up, the command not yet run), ``start``,
``state``, ``kill``, ``delete``, ``exec``, ``ps``. Each verb is a fresh process, so this package keeps
its start-up small (``cli`` imports only what parsing needs; each verb imports its own modules).

* ``cli``, ``argv``: runc's global flags and verbs, parsed as Go's ``flag`` package parses them;
* ``bundle``: ``config.json`` read defensively and translated into the engine's ``Spec``;
* ``nodepolicy``: the node policy (``policies``) every bundle meets: a refusal, or hardening added;
* ``seccomp``: ``linux.seccomp`` and RuntimeDefault compiled through ``hardening.seccomp``'s cache;
* ``cgroupspath``: ``linux.cgroupsPath`` (cgroupfs or systemd's ``slice:prefix:name`` form);
* ``state``, ``runlog``: the per-container state directory and the runc-compatible log;
* ``create``, ``lifecycle``, ``execute``, ``features``: the verbs.

The launch itself is the engine's (``engine.runtime.launcher`` in its create-then-start mode): this
package composes ``engine``, ``policies`` and ``hardening`` like ``stockade run`` does.
"""
