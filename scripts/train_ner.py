"""Train, evaluate and package the medcode_nlp NER model in one reproducible command.

From the project root, with the public data sets in ../shared/data:

    python scripts/train_ner.py

Steps (all outputs except the packaged model go to training_runs/, which is git-ignored):

1. build the corpora (``medcode_nlp.training.ner_data``) into ``<run>/corpus``;
2. save a blank pipeline with the clinical tokenizer to ``<run>/base`` (the config copies the
   tokenizer from it with spaCy's built-in ``spacy.copy_from_base_model.v1``);
3. ``python -m spacy train configs/ner.cfg`` on one thread with a fixed seed into ``<run>/model``;
4. copy ``model-best`` to ``models/ner`` (tokenizer, vocab, ner, config.cfg, meta.json; no data);
5. run ``benchmarks/ner_eval.py`` on the packaged model, write ``MODEL_CARD.md`` and
   ``checksums.sha256`` (sha256 of every file in ``models/ner``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medcode_nlp.training.ner_data import build_corpora  # noqa: E402
from medcode_nlp.tokenizer import blank_clinical  # noqa: E402

CONFIG = ROOT / "configs" / "ner.cfg"
MODEL_DIR = ROOT / "models" / "ner"
EVAL_JSON = ROOT / "benchmarks" / "results" / "ner_eval.json"
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def write_checksums(model_dir: Path) -> Path:
    """Write ``checksums.sha256`` (``sha256sum`` format) for every file under ``model_dir``."""
    out = model_dir / "checksums.sha256"
    lines = []
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and p != out):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(model_dir).as_posix()}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def train(run: Path, seed: int, max_steps: int | None, log: Path) -> float:
    """Run ``spacy train`` in a single-threaded subprocess; return the wall-clock seconds."""
    cmd = [
        sys.executable, "-m", "spacy", "train", str(CONFIG),
        "--output", str(run / "model"),
        "--paths.train", str(run / "corpus" / "train.spacy"),
        "--paths.dev", str(run / "corpus" / "dev.spacy"),
        "--paths.base", str(run / "base"),
        "--system.seed", str(seed),
    ]  # fmt: skip
    if max_steps is not None:
        cmd += ["--training.max_steps", str(max_steps)]
    env = {**os.environ, **SINGLE_THREAD}
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return time.perf_counter() - start


def package(best: Path, model_dir: Path, info: dict[str, Any]) -> None:
    """Copy the trained pipeline to ``model_dir`` with clean paths and meta."""
    if model_dir.exists():
        shutil.rmtree(model_dir)
    shutil.copytree(best, model_dir)
    cfg = (model_dir / "config.cfg").read_text(encoding="utf-8").splitlines()
    cleaned = []
    section = ""
    for line in cfg:
        if line.startswith("["):
            section = line.strip()
        if section == "[paths]" and "=" in line:
            line = line.split("=")[0].rstrip() + " = null"
        cleaned.append(line)
    (model_dir / "config.cfg").write_text("\n".join(cleaned) + "\n", encoding="utf-8")
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    meta.update(
        {
            "name": "medcode_ner",
            "version": info["version"],
            "description": "medcode_nlp clinical NER: PROBLEM, PROCEDURE, DRUG (see MODEL_CARD.md)",
            "license": "Apache-2.0 (weights); training data: see MODEL_CARD.md",
            "sources": info["sources"],
        }
    )
    (model_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--run", type=Path, default=ROOT / "training_runs" / "ner")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None, help="override the config")
    parser.add_argument("--no-ncbi", action="store_true", help="train without NCBI Disease")
    parser.add_argument(
        "--codiesp-docs", type=int, default=250, help="weakly labelled CodiEsp train docs"
    )
    parser.add_argument("--no-package", action="store_true", help="train only")
    parser.add_argument(
        "--package-only", action="store_true", help="package an existing run (skip training)"
    )
    args = parser.parse_args()
    run: Path = args.run.resolve()
    info_path = run / "train_info.json"
    if not args.package_only:
        run.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        stats = build_corpora(
            args.data, run / "corpus", use_ncbi=not args.no_ncbi, codiesp_limit=args.codiesp_docs
        )
        corpus_seconds = time.perf_counter() - start
        blank_clinical().to_disk(run / "base")
        print(f"corpora built in {corpus_seconds:.0f}s; training (log: {run / 'train.log'})")
        seconds = train(run, args.seed, args.max_steps, run / "train.log")
        info = {
            "command": " ".join(["python", "scripts/train_ner.py", *sys.argv[1:]]),
            "seed": args.seed,
            "use_ncbi": not args.no_ncbi,
            "codiesp_docs": args.codiesp_docs,
            "corpus_seconds": round(corpus_seconds, 1),
            "train_seconds": round(seconds, 1),
            "corpus_stats": stats,
        }
        info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        print(f"trained in {seconds / 60:.1f} min")
    if args.no_package:
        return
    info = json.loads(info_path.read_text(encoding="utf-8"))
    from medcode_nlp.about import __version__

    info["version"] = __version__
    info["sources"] = [
        {"name": "BC5CDR", "url": "https://biocreative.bioinformatics.udel.edu/"},
        {"name": "NCBI Disease", "url": "https://www.ncbi.nlm.nih.gov/CBBresearch/Dogan/DISEASE/"},
        {"name": "CodiEsp (English MT, CC BY 4.0)", "url": "https://zenodo.org/record/3837305"},
    ]
    package(run / "model" / "model-best", MODEL_DIR, info)
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ner_eval.py"), "--data", str(args.data)],
        check=True,
        env={**os.environ, **SINGLE_THREAD},
        cwd=ROOT,
    )
    from medcode_nlp.training.model_card import write_model_card

    write_model_card(MODEL_DIR, info, run / "train.log", EVAL_JSON)
    write_checksums(MODEL_DIR)
    print(f"packaged {MODEL_DIR}")


if __name__ == "__main__":
    main()
