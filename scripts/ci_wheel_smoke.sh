#!/usr/bin/env bash
# Release check (issue 21): build the sdist and the wheel, check their metadata, install the
# wheel into a fresh venv outside the source tree, and compare its suggestions for
# examples/*.txt with this checkout's (the editable install: the golden output).
#
# Run from any environment with the dev extras installed (python3 -m build, twine):
#   scripts/ci_wheel_smoke.sh            # work directory: a new temporary folder
#   WHEEL_SMOKE_DIR=/tmp/x scripts/ci_wheel_smoke.sh
# Prints the wheel size and the install time (the README reports them).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WHEEL_SMOKE_DIR:-$(mktemp -d)}"
mkdir -p "$WORK"
rm -rf "$WORK/dist" "$WORK/venv" "$WORK/golden" "$WORK/wheel" "$WORK/kb" "$WORK/run"
mkdir -p "$WORK/golden" "$WORK/wheel" "$WORK/run"
CONSTRAINTS=()
[ -f "$ROOT/constraints.txt" ] && CONSTRAINTS=(-c "$ROOT/constraints.txt")

echo "[${SECONDS}s] == build sdist and wheel"
python3 -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 \
  || { tail -n 40 "$WORK/build.log"; exit 1; }
python3 -m twine check --strict "$WORK"/dist/*
WHEEL="$(ls "$WORK"/dist/*.whl)"
python3 -m zipfile -l "$WHEEL" >"$WORK/wheel-files.txt"
for model in ner/meta.json ner/checksums.sha256 ranker/ranker.skops ranker/checksums.sha256; do
  grep -q "medcode_nlp/models/$model " "$WORK/wheel-files.txt" \
    || { echo "the wheel lacks medcode_nlp/models/$model"; exit 1; }
done

echo "[${SECONDS}s] == golden output: this checkout's package and models (as an editable install runs)"
# From $ROOT: `python -m` puts the working directory first on sys.path.
for note in "$ROOT"/examples/*.txt; do
  (cd "$ROOT" && env -u MEDCODE_MODELS PYTHONPATH="$ROOT" python3 -m medcode_nlp.cli suggest \
    "$note" --format json) >"$WORK/golden/$(basename "$note" .txt).json"
done

echo "[${SECONDS}s] == install the wheel into a fresh venv"
python3 -m venv "$WORK/venv"
start=$(date +%s)
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "${CONSTRAINTS[@]}" "$WHEEL" \
  2>"$WORK/install.log" || { tail -n 40 "$WORK/install.log"; exit 1; }
install_seconds=$(( $(date +%s) - start ))

echo "[${SECONDS}s] == the wheel, run from $WORK/run with a knowledge base built from scratch"
cd "$WORK/run"
# The wheel's package, not this checkout's, and its models come from inside the package.
env -u PYTHONPATH -u MEDCODE_MODELS "$WORK/venv/bin/python" - "$WORK/venv" <<'EOF'
import sys
from pathlib import Path

import medcode_nlp
from medcode_nlp.paths import models_dir

venv = Path(sys.argv[1]).resolve()
package = Path(medcode_nlp.__file__).resolve().parent
assert venv in package.parents, f"medcode_nlp imported from {package}, not from the venv"
assert models_dir() == package / "models", models_dir()
EOF
for note in "$ROOT"/examples/*.txt; do
  env -u PYTHONPATH -u MEDCODE_MODELS MEDCODE_KB="$WORK/kb" \
    "$WORK/venv/bin/medcode" suggest "$note" --format json \
    >"$WORK/wheel/$(basename "$note" .txt).json"
done

echo "[${SECONDS}s] == compare"
python3 - "$WORK/golden" "$WORK/wheel" <<'EOF'
import json
import sys
from pathlib import Path

golden_dir, wheel_dir = Path(sys.argv[1]), Path(sys.argv[2])
failures = 0
for golden_file in sorted(golden_dir.glob("*.json")):
    golden = json.loads(golden_file.read_text(encoding="utf-8"))
    wheel = json.loads((wheel_dir / golden_file.name).read_text(encoding="utf-8"))

    def codes(result: dict) -> list[tuple[str, str, float]]:
        return [(c["system"], c["code"], c["score"]) for c in result["codes"]]

    mode = wheel["versions"].get("mode")
    same = codes(golden) == codes(wheel) and bool(golden["codes"])
    shipped = mode == {"ner": "shipped", "ranker": "shipped"}
    print(f"{golden_file.stem}: {len(golden['codes'])} codes, "
          f"{'same' if same else 'DIFFERENT'}, mode {mode}")
    failures += (not same) + (not shipped)
sys.exit(1 if failures else 0)
EOF

wheel_kb=$(( $(stat -c %s "$WHEEL") / 1024 ))
sdist_kb=$(( $(stat -c %s "$WORK"/dist/*.tar.gz) / 1024 ))
echo "wheel $(basename "$WHEEL"): ${wheel_kb} KiB; sdist ${sdist_kb} KiB;" \
     "fresh-venv install with dependencies: ${install_seconds} s"
