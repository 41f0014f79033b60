"""Run one benchmark area (`python -m bench bbs`) or all of them (`python -m bench all`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def areas() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    known = areas()
    if len(argv) < 1 or argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench <area> [options]\nareas: {', '.join(known)}, all")
        return 0 if argv else 2
    area, rest = argv[0], argv[1:]
    if area != "all" and area not in known:
        print(f"unknown area {area!r}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    for name in known if area == "all" else [area]:
        module = importlib.import_module(f"bench.{name}")
        code = module.main(rest)
        if code:
            return int(code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
