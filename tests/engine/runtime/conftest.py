from tests.engine.runtime.support import engine, probe_rootfs  # noqa: F401 - fixtures
