#!/usr/bin/env bash
# What a user downloads and waits for (README "Install as a library"): the committed HEAD is
# built, checked and installed by scripts/ci_wheel_smoke.sh (fresh venv, dependencies included,
# same codes as the checkout), then the wheel alone is installed (--no-deps) into another
# fresh venv. Writes benchmarks/results/wheel_install.json.
# Usage: benchmarks/wheel_install.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
mkdir -p "$WORK/src"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD)"
git -C "$ROOT" archive "$COMMIT" | tar -x -C "$WORK/src"
WHEEL_SMOKE_DIR="$WORK/smoke" "$WORK/src/scripts/ci_wheel_smoke.sh" | tee "$WORK/smoke.log"
WHEEL="$(ls "$WORK"/smoke/dist/*.whl)"

python3 -m venv "$WORK/nodeps"
start=$(date +%s.%N)
"$WORK/nodeps/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$WHEEL" \
  2>/dev/null
end=$(date +%s.%N)

python3 - "$ROOT" "$WORK" "$WHEEL" "$start" "$end" "$COMMIT" <<'EOF'
import json
import re
import sys
from pathlib import Path

root, work, wheel = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
start, end = float(sys.argv[4]), float(sys.argv[5])


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


log = (work / "smoke.log").read_text(encoding="utf-8")
install = int(re.search(r"dependencies: (\d+) s", log).group(1))
site = next((work / "smoke" / "venv" / "lib").glob("python*/site-packages"))
package = next((work / "nodeps" / "lib").glob("python*/site-packages")) / "medcode_nlp"
result = {
    "commit": sys.argv[6],
    "wheel": wheel.name,
    "wheel_bytes": wheel.stat().st_size,
    "sdist_bytes": next((work / "smoke" / "dist").glob("*.tar.gz")).stat().st_size,
    "installed_package_bytes": tree_bytes(package),
    "models_bytes": tree_bytes(package / "models"),
    "venv_site_packages_bytes": tree_bytes(site),
    "install_with_dependencies_seconds": install,
    "install_wheel_only_seconds": round(end - start, 1),
    "same_codes_as_checkout": "DIFFERENT" not in log,
}
out = root / "benchmarks" / "results" / "wheel_install.json"
out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
print(json.dumps(result, indent=1))
EOF
