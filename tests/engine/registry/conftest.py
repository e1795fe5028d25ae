"""Registry client tests: the real registry in its set-ups, a token service, a hostile impostor."""

from tests.engine.registry.fixtures import (_auth_file, hostile, make_client, paths, pushed_busybox,  # noqa: F401
                                            token_registry)
