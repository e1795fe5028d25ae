"""Store tests share the registry tests' fixtures (real registry, hostile impostor, clients)."""

from tests.engine.registry.fixtures import _auth_file, hostile, make_client, paths, pushed_busybox  # noqa: F401
