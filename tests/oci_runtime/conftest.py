"""Fixtures for ``stockade-runtime``'s tests: a runtime bound to the test's own root and log, and the
check, after each test, that no container state or cgroup of it is left on this shared machine."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.oci_runtime.support import Runtime, remove_cgroup_parent


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path)
    try:
        yield rt
    finally:
        rt.cleanup()


@pytest.fixture(scope="session", autouse=True)
def _tests_cgroup_parent() -> Iterator[None]:
    yield
    remove_cgroup_parent()
