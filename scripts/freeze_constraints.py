"""Write constraints.txt: the exact installed versions of everything ``medcode_nlp[dev]`` pulls in.

Run it in an environment where the test suite passes (``python3 scripts/freeze_constraints.py``);
the README's test command and ``.ci/run`` install with ``-c constraints.txt``.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
INSTALLER_TOOLS = ("pip", "setuptools", "wheel")  # left to the venv and the build backend
HEADER = (
    "# Exact versions the test suite passes with (Python 3.11), used by the README's test\n"
    "# command and .ci/run: pip install -e \".[dev]\" -c constraints.txt\n"
    "# Regenerate after a verified upgrade: python3 scripts/freeze_constraints.py\n"
)


def closure(root: str, extras: set[str]) -> dict[str, str]:
    """Installed name -> version for ``root[extras]`` and every requirement it pulls in."""
    versions: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(root, extra) for extra in sorted(extras | {""})]
    while todo:
        name, extra = todo.pop()
        key = (canonicalize_name(name), extra)
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(name)
        versions[canonicalize_name(name)] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            env = {**default_environment(), "extra": extra}
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            todo.extend((req.name, sub) for sub in sorted(req.extras | {""}))
    return versions


def main() -> int:
    versions = closure("medcode_nlp", {"dev"})
    for name in ("medcode-nlp", *INSTALLER_TOOLS):
        versions.pop(name, None)
    lines = [f"{name}=={version}" for name, version in sorted(versions.items())]
    (ROOT / "constraints.txt").write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"constraints.txt: {len(lines)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
