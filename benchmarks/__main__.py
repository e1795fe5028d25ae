"""``python -m benchmarks [NAME…]``: run every benchmark module (``bench_*.py``), or the named ones."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or names
    unknown = set(wanted) - set(names)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have: {', '.join(names)}",
              file=sys.stderr)
        return 2
    failed = 0
    environment = dict(os.environ)
    for name in wanted:
        module = importlib.import_module(f"benchmarks.{name}")
        try:
            module.main()
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
        finally:
            # Each benchmark starts from the caller's environment, whatever the last one set.
            os.environ.clear()
            os.environ.update(environment)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
