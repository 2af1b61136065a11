#!/usr/bin/env bash
# Two releases' `medcode batch` at once on the same notes (2 workers each), so that both get
# the same share of a shared machine. Usage (from anywhere):
#   benchmarks/batch_side_by_side.sh CURRENT_PYTHON BASELINE_PYTHON NOTES.jsonl OUTDIR
# NOTES.jsonl: {"id", "text"} lines (e.g. the first 1,000 CodiEsp background notes). Each
# interpreter imports its own medcode_nlp (run from OUTDIR, no PYTHONPATH). Writes
# OUTDIR/{current,baseline}.{jsonl,summary.json,time} (start and end, epoch seconds).
set -euo pipefail
current=$1 baseline=$2 notes=$(realpath "$3") out=$4
mkdir -p "$out" && cd "$out"
unset PYTHONPATH
run() {  # name python
  local start; start=$(date +%s.%N)
  "$2" -m medcode_nlp.cli batch "$notes" "$1.jsonl" --workers 2 --chunk-size 32 \
    --no-progress > "$1.summary.json"
  echo "$start $(date +%s.%N)" > "$1.time"
}
rm -rf current.jsonl* baseline.jsonl*
run current "$current" & run baseline "$baseline" & wait
